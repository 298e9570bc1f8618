/**
 * Schema migrations, applied in order at start under an advisory lock; each runs once (table schema_migrations).
 * Add new migrations at the end; never edit one that has shipped.
 */
export const migrations: { id: string; sql: string }[] = [
  {
    id: '001_initial',
    sql: `
CREATE TABLE files (
  id            bigserial PRIMARY KEY,
  name          text NOT NULL,
  sha256        char(64) NOT NULL,
  size          bigint NOT NULL,
  source        text NOT NULL DEFAULT 'inbox',
  status        text NOT NULL,              -- RECEIVED | ACCEPTED | REJECTED | DUPLICATE
  format        text,
  encoding      text,
  reason        text,
  duplicate_of  bigint REFERENCES files(id),
  payments_added integer NOT NULL DEFAULT 0,
  reportable    integer NOT NULL DEFAULT 0,
  skipped       integer NOT NULL DEFAULT 0,
  records_rejected integer NOT NULL DEFAULT 0,
  problems      jsonb NOT NULL DEFAULT '[]',
  received_at   timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);
-- the same content is processed once: the first row for a hash is the original, later ones are DUPLICATE
CREATE UNIQUE INDEX files_sha256_original ON files (sha256) WHERE status <> 'DUPLICATE';
CREATE INDEX files_received_at ON files (received_at);

CREATE TABLE payee_versions (
  id          bigserial PRIMARY KEY,
  source      text NOT NULL,
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  records     integer NOT NULL,
  rejected    integer NOT NULL DEFAULT 0,
  is_current  boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX payee_versions_current ON payee_versions (is_current) WHERE is_current;

CREATE TABLE payees (
  version_id    bigint NOT NULL REFERENCES payee_versions(id) ON DELETE CASCADE,
  bic           text NOT NULL,
  account       text NOT NULL,
  ogrn          text NOT NULL,
  inn           text NOT NULL,
  kpp           text NOT NULL,
  name          text NOT NULL,
  corr_account  text NOT NULL,
  bank_name     text NOT NULL,
  capital_repair boolean NOT NULL,
  guid          text NOT NULL,
  updated_at    text NOT NULL,
  PRIMARY KEY (version_id, bic, account)
);

CREATE TABLE packets (
  id            bigserial PRIMARY KEY,
  message_id    uuid NOT NULL UNIQUE,        -- SMEV MessageID, fixed before the first send, reused on retry
  status        text NOT NULL,               -- BUILT | SENT | RESPONDED | SMEV_REJECTED | PARKED
  form          text NOT NULL DEFAULT 'full',
  schema_version text NOT NULL,
  items         integer NOT NULL,
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text,
  accepted      integer NOT NULL DEFAULT 0,
  rejected      integer NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  sent_at       timestamptz,
  responded_at  timestamptz,
  previous_message_ids uuid[] NOT NULL DEFAULT '{}'
);
CREATE INDEX packets_status ON packets (status);

CREATE TABLE payments (
  id            bigserial PRIMARY KEY,
  source_key    text NOT NULL UNIQUE,        -- bank document identity: the idempotency key of intake
  file_id       bigint NOT NULL REFERENCES files(id),
  ref           text NOT NULL,
  location      text NOT NULL,
  kind          text NOT NULL,
  amount_kop    bigint NOT NULL CHECK (amount_kop > 0),
  payment_date  date NOT NULL,
  doc_no        text,
  purpose       text NOT NULL,
  payment_id    text,                        -- field 22
  payer         jsonb NOT NULL,
  payee         jsonb NOT NULL,
  status        text NOT NULL,               -- RECEIVED | SKIPPED | REPORTABLE | PACKED | SENT | ACCEPTED | REJECTED
  reason        text NOT NULL,
  rules         jsonb NOT NULL DEFAULT '[]',
  payment_document_id text,
  service_id    text,
  els           text,
  account_number text,
  period_year   smallint,
  period_month  smallint,
  payee_guid    text,
  payee_version_id bigint,
  recipient     jsonb,                        -- requisites that go into the notification
  order_id      char(32) UNIQUE,
  transport_id  uuid UNIQUE,
  packet_id     bigint REFERENCES packets(id),
  gis_id        text,
  error_code    text,
  error_text    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_file ON payments (file_id);
CREATE INDEX payments_status ON payments (status);
CREATE INDEX payments_packet ON payments (packet_id);

CREATE TABLE payment_events (
  id          bigserial PRIMARY KEY,
  payment_id  bigint NOT NULL REFERENCES payments(id),
  at          timestamptz NOT NULL DEFAULT now(),
  status      text NOT NULL,
  detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, id);

CREATE TABLE smev_messages (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  direction   text NOT NULL,                 -- out | in
  operation   text NOT NULL,                 -- SendRequest | GetResponse | Ack | ...
  message_id  uuid,                          -- the SMEV MessageID concerned
  packet_id   bigint REFERENCES packets(id),
  http_status integer,
  status      text NOT NULL,                 -- ok | fault | error | rejected
  error       text,
  request_xml text,
  response_xml text,
  duration_ms integer
);
CREATE INDEX smev_messages_packet ON smev_messages (packet_id);
CREATE INDEX smev_messages_message ON smev_messages (message_id);

-- responses already processed (GetResponse redelivers until Ack): the idempotent receiver of the poller
CREATE TABLE smev_inbound (
  message_id  uuid PRIMARY KEY,
  original_message_id uuid,
  received_at timestamptz NOT NULL DEFAULT now(),
  outcome     text NOT NULL
);
`,
  },
  {
    // issue 4a: the attempt history of every retried/parked/replayed message, the parked messages, the audit log
    id: '004a_parking_audit',
    sql: `
CREATE TABLE delivery_attempts (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  queue       text NOT NULL,                 -- the work queue the message was consumed from
  message_id  text,
  packet_id   bigint,
  payment_id  bigint,
  attempt     integer NOT NULL,
  outcome     text NOT NULL,                 -- retry | park | replay
  tier        text,                          -- the retry queue, for a retry
  reason      text NOT NULL,
  actor       text                           -- who replayed
);
CREATE INDEX delivery_attempts_message ON delivery_attempts (message_id, id);

CREATE TABLE parked_messages (
  id          bigserial PRIMARY KEY,
  queue       text NOT NULL,                 -- the work queue it came from
  parked_queue text NOT NULL,
  route       text NOT NULL,
  message_id  text NOT NULL,
  packet_id   bigint,
  payment_id  bigint,
  reason      text NOT NULL,
  attempts    integer NOT NULL,
  history     jsonb NOT NULL DEFAULT '[]',   -- the x-history header at parking time
  parked_at   timestamptz NOT NULL DEFAULT now(),
  state       text NOT NULL DEFAULT 'parked', -- parked | replayed
  replayed_at timestamptz,
  replayed_by text
);
-- one row per message while it is parked; a message parked again after a replay gets a new row
CREATE UNIQUE INDEX parked_messages_current ON parked_messages (parked_queue, message_id) WHERE state = 'parked';

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,                 -- "token:<hash prefix>[ (operator)]" or "cli:<user>"
  action      text NOT NULL,                 -- parking.replay | …
  target      text,
  detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
`,
  },
  {
    // issue 5: payee registry over SMEV (ВС 95796): versions with their diff, refresh attempts and their pages
    id: '005_payee_registry',
    sql: `
ALTER TABLE payees ADD COLUMN kbk text, ADD COLUMN oktmo text;
CREATE INDEX payees_version_inn ON payees (version_id, inn);
ALTER TABLE payee_versions
  ADD COLUMN previous_id bigint REFERENCES payee_versions(id),
  ADD COLUMN added integer NOT NULL DEFAULT 0,
  ADD COLUMN changed integer NOT NULL DEFAULT 0,
  ADD COLUMN removed integer NOT NULL DEFAULT 0,
  ADD COLUMN refresh_id bigint;

-- what a version changed against the version it replaced (natural key BIC + account)
CREATE TABLE payee_version_changes (
  version_id  bigint NOT NULL REFERENCES payee_versions(id) ON DELETE CASCADE,
  change      text NOT NULL,               -- added | changed | removed
  bic         text NOT NULL,
  account     text NOT NULL,
  guid        text NOT NULL,
  PRIMARY KEY (version_id, bic, account)
);

-- one download of the registry through SMEV (scheduled or on demand)
CREATE TABLE payee_refreshes (
  id          bigserial PRIMARY KEY,
  trigger     text NOT NULL,               -- schedule | manual
  slot        timestamptz UNIQUE,          -- the cron minute of a scheduled refresh (one per slot, whatever the instance)
  status      text NOT NULL,               -- running | done | unchanged | failed
  export_id   text,
  pages       integer NOT NULL DEFAULT 0,
  records     integer NOT NULL DEFAULT 0,
  rejected    integer NOT NULL DEFAULT 0,
  version_id  bigint REFERENCES payee_versions(id),
  error       text,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX payee_refreshes_status ON payee_refreshes (status);

CREATE TABLE payee_refresh_pages (
  refresh_id  bigint NOT NULL REFERENCES payee_refreshes(id) ON DELETE CASCADE,
  page_no     integer NOT NULL,
  message_id  uuid NOT NULL UNIQUE,        -- SMEV MessageID of the page request; the answer's OriginalMessageId
  page_key    text,
  status      text NOT NULL,               -- sending | sent | received | failed
  records     jsonb,
  rejected    jsonb,
  error       text,
  sent_at     timestamptz NOT NULL DEFAULT now(),
  received_at timestamptz,
  PRIMARY KEY (refresh_id, page_no)
);
CREATE INDEX payee_refresh_pages_status ON payee_refresh_pages (status);
`,
  },
  {
    // PostgreSQL CPU per payment (bench/db-cpu.ts). No index may name payments.status, so that SENT and
    // ACCEPTED/REJECTED (which change only unindexed columns) are HOT updates: no new entry in the 6 other
    // indexes, given room on the page (fillfactor; applies to pages written from now on). The sweeper, the
    // only reader of payments_status, finds REPORTABLE payments through a partial index on columns those
    // updates leave alone: a REPORTABLE payment has an order-id and no packet (SKIPPED ones have no order-id).
    id: '006_payments_hot_updates',
    sql: `
DROP INDEX payments_status;
CREATE INDEX payments_unpacked ON payments (id) WHERE packet_id IS NULL AND order_id IS NOT NULL;
ALTER TABLE payments SET (fillfactor = 50);
`,
  },
  {
    // the signed XML of every SMEV call (≈ 600 KB per SendRequest) compressed with lz4: ≈ 3× less CPU than pglz
    // for ≈ 5 % more bytes; applies to rows written from now on. A server built without lz4 keeps pglz.
    id: '007_smev_xml_lz4',
    sql: `
DO $$
BEGIN
  ALTER TABLE smev_messages ALTER COLUMN request_xml SET COMPRESSION lz4, ALTER COLUMN response_xml SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  RAISE NOTICE 'lz4 is not available: smev_messages keeps the default compression';
END $$;
`,
  },
];
