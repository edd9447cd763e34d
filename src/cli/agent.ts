import { Command, InvalidArgumentError } from 'commander';
import { AGENT_STATUSES, approveAgent, deleteAgent, listAgents, revokeAgent, type AgentStatus } from '../enrolment/agent-admin.ts';
import { print, printJson, withAdminPool } from './admin-database.ts';

function parseStatus(text: string): AgentStatus {
  if (!(AGENT_STATUSES as readonly string[]).includes(text)) throw new InvalidArgumentError(`expected one of ${AGENT_STATUSES.join(', ')}`);
  return text as AgentStatus;
}

export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('agents (DATABASE_URL); every status change is recorded in agent_status_history');
  agent
    .command('list')
    .description('list agents that are not deleted')
    .option('--status <status>', `only agents with this status (${AGENT_STATUSES.join(', ')})`, parseStatus)
    .option('--json', 'machine-readable output')
    .action(async (options: { status?: AgentStatus; json?: boolean }) => {
      const agents = await withAdminPool((pool) => listAgents(pool, options.status));
      if (options.json === true) return printJson(agents);
      if (agents.length === 0) return print('no agents');
      for (const a of agents) print(`${a.id}  ${a.status.padEnd(7)}  ${a.hostname}  org=${a.organisation_name}  version=${a.version || '-'}  last heartbeat=${a.last_heartbeat_at ?? 'never'}`);
    });
  agent
    .command('approve')
    .description('approve a pending agent; its next Register returns a JWT')
    .argument('<id>', 'agent id')
    .allowUnknownOption() // ids may begin with '-'
    .action(async (id: string) => {
      const change = await withAdminPool((pool) => approveAgent(pool, id));
      if (change.changed) return print(`approved agent ${id}`);
      if (change.previous === 'revoked') throw new Error(`agent ${id} is revoked; delete it and enrol the machine again`);
      print(`agent ${id} is already approved (${change.previous})`);
    });
  agent
    .command('revoke')
    .description('revoke an agent: Register answers revoked and its heartbeat stream ends')
    .argument('<id>', 'agent id')
    .allowUnknownOption() // ids may begin with '-'
    .action(async (id: string) => {
      const change = await withAdminPool((pool) => revokeAgent(pool, id));
      print(change.changed ? `revoked agent ${id}` : `agent ${id} is already revoked`);
    });
  agent
    .command('delete')
    .description('delete an agent and its host; the machine may enrol again afterwards')
    .argument('<id>', 'agent id')
    .allowUnknownOption() // ids may begin with '-'
    .action(async (id: string) => {
      const { hostsDeleted } = await withAdminPool((pool) => deleteAgent(pool, id));
      print(`deleted agent ${id} and ${hostsDeleted} host${hostsDeleted === 1 ? '' : 's'}`);
    });
}
