import type { HeartbeatResponse } from '../grpc/messages.ts';

/**
 * Update fields of a heartbeat response (SPEC §6.2): set when a latest version is configured and the
 * agent reports a real version (non-empty, not `dev`) that differs from it.
 */
export function updateSignal(agentVersion: string, latestVersion: string | undefined, downloadBaseUrl: string): Partial<HeartbeatResponse> {
  if (latestVersion === undefined || agentVersion === '' || agentVersion === 'dev' || agentVersion === latestVersion) return {};
  return { latest_version: latestVersion, update_available: true, download_url: `${downloadBaseUrl}/api/agent/download` };
}
