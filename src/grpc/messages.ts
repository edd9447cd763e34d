/** TypeScript shapes of the agent.v1 messages as decoded with PROTO_LOADER_OPTIONS (SPEC §3). */

export interface PlatformInfo {
  os: string;
  arch: string;
  os_version: string;
  ip_addresses: string[];
}

export interface AgentInfo {
  agent_id: string;
  version: string;
  hostname: string;
}

export interface Tag {
  key: string;
  value: string;
}

export interface RegisterRequest {
  org_token: string;
  public_key: string;
  platform_info: PlatformInfo | null;
  agent_info: AgentInfo | null;
  tags: Tag[];
  csr_der: Buffer;
}

export interface RegisterResponse {
  agent_id: string;
  status: 'pending' | 'active' | 'revoked';
  message: string;
  jwt_token: string;
  client_cert_pem?: string;
  agent_ca_cert_pem?: string;
  client_cert_not_after_unix?: number;
}

export interface DiskInfo {
  mount_point: string;
  device: string;
  fs_type: string;
  total_bytes: number;
  used_bytes: number;
  free_bytes: number;
  percent_used: number;
}

export interface NetworkInterface {
  name: string;
  ip_addresses: string[];
  mac_address: string;
  is_up: boolean;
}

export interface HeartbeatRequest {
  agent_id: string;
  cpu_percent: number;
  memory_percent: number;
  disk_percent: number;
  uptime_seconds: number;
  timestamp_unix: number;
  agent_version: string;
  os_version: string;
  disks: DiskInfo[];
  network_interfaces: NetworkInterface[];
  os: string;
  arch: string;
  pinned_server_cert_fingerprint: string;
}

export interface HeartbeatResponse {
  ok: boolean;
  latest_version?: string;
  update_available?: boolean;
  download_url?: string;
}
