-- ct-ops data model (SPEC §4). Table and column names follow the ct-ops schema the web app reads.

CREATE TABLE organisations (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz
);
CREATE UNIQUE INDEX organisations_name_live_key ON organisations (name) WHERE deleted_at IS NULL;

CREATE TABLE agent_enrolment_tokens (
  id               text PRIMARY KEY,
  organisation_id  text NOT NULL REFERENCES organisations (id),
  label            text NOT NULL DEFAULT '',
  token_hash       text NOT NULL UNIQUE,
  auto_approve     boolean NOT NULL DEFAULT false,
  max_uses         integer CHECK (max_uses IS NULL OR max_uses > 0),
  usage_count      integer NOT NULL DEFAULT 0,
  expires_at       timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  deleted_at       timestamptz,
  metadata         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX agent_enrolment_tokens_organisation_idx ON agent_enrolment_tokens (organisation_id);

CREATE TABLE agents (
  id                  text PRIMARY KEY,
  organisation_id     text NOT NULL REFERENCES organisations (id),
  hostname            text NOT NULL,
  public_key          text NOT NULL,
  status              text NOT NULL CHECK (status IN ('pending', 'active', 'offline', 'revoked')),
  version             text NOT NULL DEFAULT '',
  os                  text NOT NULL DEFAULT '',
  arch                text NOT NULL DEFAULT '',
  last_heartbeat_at   timestamptz,
  approved_at         timestamptz,
  enrolment_token_id  text REFERENCES agent_enrolment_tokens (id),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  deleted_at          timestamptz,
  metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The heartbeat stream that currently owns this agent (SPEC §6.6): only its close may mark the agent offline.
  stream_session_id   text
);
-- One live agent per public key; a deleted agent's key may enrol again as a new agent.
CREATE UNIQUE INDEX agents_public_key_live_key ON agents (public_key) WHERE deleted_at IS NULL;
CREATE INDEX agents_organisation_status_idx ON agents (organisation_id, status) WHERE deleted_at IS NULL;
-- Every heartbeat updates its agent and host row: leave room on each page so those updates stay HOT
-- (no index writes). For the same reason last_heartbeat_at is not indexed; the offline sweeper's scan
-- every INGEST_SWEEP_INTERVAL_SECONDS is cheaper than an index write per heartbeat.
ALTER TABLE agents SET (fillfactor = 70);

CREATE TABLE agent_status_history (
  id               text PRIMARY KEY,
  agent_id         text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  organisation_id  text NOT NULL REFERENCES organisations (id),
  status           text NOT NULL,
  actor_id         text,
  reason           text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_status_history_agent_idx ON agent_status_history (agent_id, created_at);

CREATE TABLE hosts (
  id               text PRIMARY KEY,
  organisation_id  text NOT NULL REFERENCES organisations (id),
  agent_id         text REFERENCES agents (id),
  hostname         text NOT NULL,
  display_name     text NOT NULL DEFAULT '',
  os               text NOT NULL DEFAULT '',
  os_version       text NOT NULL DEFAULT '',
  arch             text NOT NULL DEFAULT '',
  ip_addresses     jsonb NOT NULL DEFAULT '[]'::jsonb,
  cpu_percent      real,
  memory_percent   real,
  disk_percent     real,
  uptime_seconds   bigint,
  status           text NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
  last_seen_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  deleted_at       timestamptz,
  metadata         jsonb NOT NULL DEFAULT '{}'::jsonb
);
ALTER TABLE hosts SET (fillfactor = 70);
-- Every heartbeat finds its host by agent id.
CREATE UNIQUE INDEX hosts_agent_live_key ON hosts (agent_id) WHERE deleted_at IS NULL;
-- Duplicate-host protection: hostname (case-insensitive) and IP overlap within an organisation.
CREATE INDEX hosts_organisation_hostname_idx ON hosts (organisation_id, lower(hostname)) WHERE deleted_at IS NULL;
CREATE INDEX hosts_ip_addresses_idx ON hosts USING gin (ip_addresses) WHERE deleted_at IS NULL;

CREATE TABLE host_metrics (
  id               text PRIMARY KEY,
  organisation_id  text NOT NULL,
  -- No foreign key: this is the hot, append-only time series; rows of removed hosts age out by retention.
  host_id          text NOT NULL,
  recorded_at      timestamptz NOT NULL,
  cpu_percent      real,
  memory_percent   real,
  disk_percent     real,
  uptime_seconds   bigint,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX host_metrics_organisation_host_recorded_idx ON host_metrics (organisation_id, host_id, recorded_at);
-- Retention deletes the oldest rows first; rows arrive in time order, so a BRIN index is enough and costs
-- almost nothing per insert.
CREATE INDEX host_metrics_recorded_brin_idx ON host_metrics USING brin (recorded_at);

-- Transactional outbox of the queue (SPEC §7). Consumers claim with FOR UPDATE SKIP LOCKED and delete to ack.
CREATE TABLE queue_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic       text NOT NULL,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_events_topic_id_idx ON queue_events (topic, id);
CREATE INDEX queue_events_created_brin_idx ON queue_events USING brin (created_at);

-- Wake consumers once per inserting statement, not once per row.
CREATE FUNCTION queue_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ingest_queue_events', '');
  RETURN NULL;
END;
$$;
CREATE TRIGGER queue_events_notify AFTER INSERT ON queue_events
  FOR EACH STATEMENT EXECUTE FUNCTION queue_events_notify();

-- Tell every replica when an agent is revoked or deleted, whoever did it (CLI or web app), so the
-- replica holding its stream can end it (SPEC §6.4).
CREATE FUNCTION agents_notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.status = 'revoked' AND OLD.status IS DISTINCT FROM 'revoked')
     OR (NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL) THEN
    PERFORM pg_notify('ingest_agent_revoked',
      json_build_object('id', NEW.id, 'deleted', NEW.deleted_at IS NOT NULL)::text);
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER agents_notify_revocation AFTER UPDATE OF status, deleted_at ON agents
  FOR EACH ROW EXECUTE FUNCTION agents_notify_revocation();

CREATE FUNCTION agents_notify_hard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ingest_agent_revoked', json_build_object('id', OLD.id, 'deleted', true)::text);
  RETURN NULL;
END;
$$;
CREATE TRIGGER agents_notify_hard_delete AFTER DELETE ON agents
  FOR EACH ROW EXECUTE FUNCTION agents_notify_hard_delete();
