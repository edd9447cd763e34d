import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import type { KeyRing } from './key-ring.ts';
import type { Clock } from '../clock.ts';

export const JWT_CLOCK_LEEWAY_SECONDS = 60;

export interface AgentClaims {
  readonly agentId: string;
  readonly organisationId: string;
  readonly expiresAt: number;
}

export class InvalidJwtError extends Error {
  readonly code = 'ERR_INVALID_JWT';
  readonly reason: string;
  constructor(reason: string) {
    super(`invalid agent token: ${reason}`);
    this.reason = reason;
    this.name = 'InvalidJwtError';
  }
}

export interface JwtOptions {
  readonly issuer: string;
  readonly ttlSeconds: number;
  readonly clock: Clock;
}

/** Signs and verifies agent JWTs (SPEC §5.4): RS256 only, `kid` header, issuer and expiry checked. */
export class AgentTokens {
  readonly #ring: KeyRing;
  readonly #options: JwtOptions;

  constructor(ring: KeyRing, options: JwtOptions) {
    this.#ring = ring;
    this.#options = options;
  }

  async sign(agentId: string, organisationId: string): Promise<string> {
    const key = this.#ring.keys.current;
    const issuedAt = Math.floor(this.#options.clock.nowMs() / 1000);
    return new SignJWT({ org: organisationId })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
      .setSubject(agentId)
      .setIssuer(this.#options.issuer)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + this.#options.ttlSeconds)
      .sign(key.privateKey);
  }

  async verify(token: string): Promise<AgentClaims> {
    if (token.length === 0 || token.length > 8192) throw new InvalidJwtError('missing or oversized');
    let kid: string | undefined;
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown };
      kid = typeof header.kid === 'string' ? header.kid : undefined;
    } catch {
      throw new InvalidJwtError('malformed header');
    }
    const candidates = this.#ring.verificationKeys().filter((k) => kid === undefined || k.kid === kid);
    if (candidates.length === 0) throw new InvalidJwtError('unknown kid');
    let lastReason = 'signature verification failed';
    for (const key of candidates) {
      try {
        const { payload } = await jwtVerify(token, key.publicKey, {
          algorithms: ['RS256'],
          issuer: this.#options.issuer,
          clockTolerance: JWT_CLOCK_LEEWAY_SECONDS,
          currentDate: new Date(this.#options.clock.nowMs()),
          requiredClaims: ['sub', 'exp'],
        });
        if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new InvalidJwtError('empty subject');
        const org = typeof payload['org'] === 'string' ? payload['org'] : '';
        return { agentId: payload.sub, organisationId: org, expiresAt: payload.exp ?? 0 };
      } catch (error) {
        if (error instanceof InvalidJwtError) throw error;
        lastReason = error instanceof joseErrors.JOSEError ? error.code : 'malformed token';
        // Only a signature mismatch may succeed with another key; anything else is final.
        if (!(error instanceof joseErrors.JWSSignatureVerificationFailed)) break;
      }
    }
    throw new InvalidJwtError(lastReason);
  }
}
