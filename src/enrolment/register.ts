import { IngestError } from '../errors.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { enrolNewAgent, KeyEnrolledConcurrently } from './enrol-new-agent.ts';
import { FailedAttemptLimiter } from './failed-attempt-limiter.ts';
import { verifyProofOfPossession } from './proof-of-possession.ts';
import { findKnownAgent, refreshKnownAgent, type KnownAgent } from './refresh-known-agent.ts';
import { validateRegisterInput, type RegisterInput, type ValidRegistration } from './register-input.ts';
import { findUsableToken, tokenFailureReason, type TokenFailureReason } from './token-check.ts';
import { hashEnrolmentToken } from './token-secret.ts';

/** The one message for every refused credential, so clients cannot tell why (no oracle, SPEC §5.2). */
export const REGISTRATION_REFUSED = 'registration refused: invalid enrolment token or key proof';
export const AWAITING_APPROVAL = 'awaiting admin approval';

export interface RegisterResult {
  readonly agentId: string;
  readonly status: 'pending' | 'active' | 'revoked';
  readonly message: string;
  /** Empty unless active. */
  readonly jwt: string;
}

export interface RegistrarDependencies {
  readonly pool: Pool;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly agentTokens: { sign(agentId: string, organisationId: string): Promise<string> };
  readonly failuresPerMinute: number;
}

const UNIQUE_VIOLATION = '23505';

/** Register (SPEC §5): new agents enrol with a token; known agents refresh their JWT. */
export class Registrar {
  readonly #deps: RegistrarDependencies;
  readonly #limiter: FailedAttemptLimiter;

  constructor(deps: RegistrarDependencies) {
    this.#deps = deps;
    this.#limiter = new FailedAttemptLimiter({ failuresPerMinute: deps.failuresPerMinute, clock: deps.clock });
  }

  async register(input: RegisterInput, clientAddress: string): Promise<RegisterResult> {
    try {
      const registration = validateRegisterInput(input);
      return await this.#registerOnce(registration, clientAddress, true);
    } catch (error) {
      this.#deps.metrics.registrations.inc({ outcome: failureOutcome(error) });
      throw error;
    }
  }

  async #registerOnce(registration: ValidRegistration, clientAddress: string, mayRetry: boolean): Promise<RegisterResult> {
    const known = await findKnownAgent(this.#deps.pool, registration.publicKey);
    if (known !== undefined) return this.#refresh(known, registration, clientAddress);
    try {
      return await this.#enrol(registration, clientAddress);
    } catch (error) {
      // The same key enrolled concurrently (maybe through another organisation's token): answer as a known agent.
      const concurrent = error instanceof KeyEnrolledConcurrently || (error as { code?: unknown }).code === UNIQUE_VIOLATION;
      if (concurrent && mayRetry) return this.#registerOnce(registration, clientAddress, false);
      if (concurrent) throw new IngestError('UNAVAILABLE', 'registration raced with another registration of this key; retry', { cause: error });
      throw error;
    }
  }

  async #enrol(registration: ValidRegistration, clientAddress: string): Promise<RegisterResult> {
    this.#refuseIfLimited(clientAddress);
    // Not required for a first registration, but a CSR that does not match the key it comes with is never honest.
    if (registration.csrDer.length > 0) {
      const proof = await verifyProofOfPossession(registration.csrDer, registration.publicKey);
      if (!proof.proven) {
        this.#limiter.recordFailure(clientAddress);
        throw new IngestError('UNAUTHENTICATED', REGISTRATION_REFUSED, { detail: `proof of possession failed for a new key: ${proof.reason}` });
      }
    }
    const tokenHash = hashEnrolmentToken(registration.orgToken);
    const outcome = await inTransaction(this.#deps.pool, async (tx) => {
      const enrolled = await enrolNewAgent(tx, registration, tokenHash);
      if (enrolled.kind === 'token_refused') return { enrolled, jwt: '' };
      // Signed before COMMIT: if signing failed, the agent would be active without ever having received a JWT.
      const jwt = enrolled.status === 'active' ? await this.#deps.agentTokens.sign(enrolled.agentId, enrolled.organisationId) : '';
      return { enrolled, jwt };
    });
    const { enrolled, jwt } = outcome;
    if (enrolled.kind === 'token_refused') return this.#refuseToken(await tokenFailureReason(this.#deps.pool, tokenHash), clientAddress);
    const label = enrolled.adoptedHostId !== null ? 'adopted_pending' : `enrolled_${enrolled.status}`;
    this.#deps.metrics.registrations.inc({ outcome: label });
    if (jwt !== '') this.#deps.metrics.jwtsIssued.inc();
    this.#deps.logger.info(
      { agentId: enrolled.agentId, organisationId: enrolled.organisationId, status: enrolled.status, adoptedHostId: enrolled.adoptedHostId, clientAddress },
      enrolled.adoptedHostId !== null ? 'agent registered on an existing host; approval required' : 'agent registered',
    );
    return { agentId: enrolled.agentId, status: enrolled.status, message: enrolled.status === 'active' ? 'registered' : AWAITING_APPROVAL, jwt };
  }

  async #refresh(agent: KnownAgent, registration: ValidRegistration, clientAddress: string): Promise<RegisterResult> {
    if (registration.csrDer.length > 0) {
      const proof = await verifyProofOfPossession(registration.csrDer, agent.publicKey);
      if (!proof.proven) {
        this.#limiter.recordFailure(clientAddress);
        throw new IngestError('UNAUTHENTICATED', REGISTRATION_REFUSED, { detail: `proof of possession failed for agent ${agent.id}: ${proof.reason}` });
      }
    } else {
      // Without a proof the token is the credential: valid and of the agent's organisation (no use consumed).
      this.#refuseIfLimited(clientAddress);
      const tokenHash = hashEnrolmentToken(registration.orgToken);
      const token = await findUsableToken(this.#deps.pool, tokenHash);
      if (token === undefined) return this.#refuseToken(await tokenFailureReason(this.#deps.pool, tokenHash), clientAddress);
      if (token.organisationId !== agent.organisationId) return this.#refuseToken('wrong_organisation', clientAddress);
    }
    const { status, jwt } = await inTransaction(this.#deps.pool, async (tx) => {
      const refreshed = await refreshKnownAgent(tx, agent.id, registration.version);
      return { status: refreshed, jwt: refreshed === 'active' ? await this.#deps.agentTokens.sign(agent.id, agent.organisationId) : '' };
    });
    if (status === 'deleted') throw new IngestError('UNAUTHENTICATED', REGISTRATION_REFUSED, { detail: `agent ${agent.id} was deleted during registration` });
    this.#deps.metrics.registrations.inc({ outcome: `refreshed_${status}` });
    if (jwt !== '') this.#deps.metrics.jwtsIssued.inc();
    this.#deps.logger.info({ agentId: agent.id, organisationId: agent.organisationId, status, proof: registration.csrDer.length > 0, clientAddress }, 'known agent re-registered');
    const message = status === 'active' ? 'token refreshed' : status === 'pending' ? AWAITING_APPROVAL : 'agent has been revoked';
    return { agentId: agent.id, status, message, jwt };
  }

  #refuseIfLimited(clientAddress: string): void {
    if (this.#limiter.isLimited(clientAddress)) {
      throw new IngestError('RESOURCE_EXHAUSTED', 'too many failed registration attempts from this address; retry later', { detail: `failed-attempt limit reached for ${clientAddress}` });
    }
  }

  #refuseToken(reason: TokenFailureReason, clientAddress: string): never {
    this.#limiter.recordFailure(clientAddress);
    this.#deps.metrics.tokenFailures.inc({ reason });
    throw new IngestError('UNAUTHENTICATED', REGISTRATION_REFUSED, { detail: `enrolment token refused: ${reason}` });
  }
}

function failureOutcome(error: unknown): string {
  if (!(error instanceof IngestError)) return 'error';
  switch (error.code) {
    case 'INVALID_ARGUMENT':
      return 'invalid_argument';
    case 'UNAUTHENTICATED':
      return 'refused';
    case 'RESOURCE_EXHAUSTED':
      return 'rate_limited';
    case 'ALREADY_EXISTS':
      return 'duplicate_host';
    default:
      return 'error';
  }
}
