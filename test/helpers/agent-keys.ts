import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { createEnrolmentToken } from '../../src/enrolment/enrolment-tokens.ts';
import type { RegisterRequest, RegisterResponse } from '../../src/grpc/messages.ts';
import type { TestService } from './service.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;

export interface AgentKey {
  /** SPKI inside a PUBLIC KEY block, as most agents send it. */
  readonly publicKeyPem: string;
  /** The raw 32-byte Ed25519 key inside a PUBLIC KEY block, as some agents send it. */
  readonly rawPublicKeyPem: string;
  readonly publicKey: CryptoKey;
  readonly privateKey: CryptoKey;
}

const pem = (der: Buffer): string => `-----BEGIN PUBLIC KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`;

/** A fresh Ed25519 agent key pair (webcrypto, so it can sign CSRs). */
export async function generateAgentKey(): Promise<AgentKey> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair;
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  const raw = Buffer.from(await webcrypto.subtle.exportKey('raw', keys.publicKey));
  return { publicKeyPem: pem(spki), rawPublicKeyPem: pem(raw), publicKey: keys.publicKey, privateKey: keys.privateKey };
}

/** A DER PKCS#10 CSR for `publicKey`, signed with `privateKey` (pass a different private key to forge one). */
export async function makeCsr(privateKey: CryptoKey, publicKey: CryptoKey, commonName = 'ct-ops-agent'): Promise<Buffer> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${commonName}`, keys: { privateKey, publicKey }, signingAlgorithm: { name: 'Ed25519' } });
  return Buffer.from(csr.rawData);
}

export interface EnrolOptions {
  readonly autoApprove?: boolean;
  readonly hostname?: string;
  readonly ipAddresses?: string[];
  readonly key?: AgentKey;
  readonly organisationName?: string;
}

export interface EnrolledAgent {
  readonly agentId: string;
  /** Empty unless the agent is active. */
  readonly jwt: string;
  readonly organisationId: string;
  readonly status: RegisterResponse['status'];
  readonly key: AgentKey;
  readonly token: string;
  readonly tokenId: string;
}

/** A Register request as a real agent sends it (with a CSR proving possession of the key). */
export async function registerRequest(token: string, key: AgentKey, overrides: Partial<RegisterRequest> = {}): Promise<Partial<RegisterRequest>> {
  return {
    org_token: token,
    public_key: key.publicKeyPem,
    platform_info: { os: 'linux', arch: 'amd64', os_version: '6.1', ip_addresses: [] },
    agent_info: { agent_id: '', version: '1.2.3', hostname: `host-${randomBytes(4).toString('hex')}` },
    tags: [],
    csr_der: await makeCsr(key.privateKey, key.publicKey),
    ...overrides,
  };
}

/** Creates an organisation and a token, then registers a new agent over the real wire. */
export async function enrolAgent(svc: TestService, options: EnrolOptions = {}): Promise<EnrolledAgent> {
  const created = await createEnrolmentToken(svc.db.pool, {
    organisationName: options.organisationName ?? `org-${randomBytes(6).toString('hex')}`,
    autoApprove: options.autoApprove ?? true,
  });
  const key = options.key ?? (await generateAgentKey());
  const request = await registerRequest(created.token, key);
  const response = await svc.client().register({
    ...request,
    platform_info: { os: 'linux', arch: 'amd64', os_version: '6.1', ip_addresses: options.ipAddresses ?? [] },
    agent_info: { agent_id: '', version: '1.2.3', hostname: options.hostname ?? `host-${randomBytes(4).toString('hex')}` },
  });
  return { agentId: response.agent_id, jwt: response.jwt_token, organisationId: created.organisationId, status: response.status, key, token: created.token, tokenId: created.id };
}
