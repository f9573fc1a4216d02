-- +goose Up
-- An uploaded X12 835 file. sha256 is the content's hash: the same file uploaded again posts
-- nothing (the unique key is the guard, whatever the concurrency).
CREATE TABLE remittances (
    id               uuid        PRIMARY KEY,
    sha256           text        NOT NULL UNIQUE,
    file_name        text        NOT NULL DEFAULT '',
    -- N1*PR identifier of the first transaction (payers name themselves their own way).
    payer            text        NOT NULL DEFAULT '',
    content          bytea       NOT NULL,
    -- x12.Summary: counts, BPR total and every deviation found.
    summary          jsonb       NOT NULL,
    total_paid_cents bigint      NOT NULL,
    matched_claims   integer     NOT NULL DEFAULT 0,
    unmatched_lines  integer     NOT NULL DEFAULT 0,
    work_items       integer     NOT NULL DEFAULT 0,
    posted_at        timestamptz NOT NULL
);
CREATE INDEX remittances_posted_idx ON remittances (posted_at DESC);

-- One CLP loop of a remittance: the payer's decision on a claim. claim_id is null when CLP01
-- matched no claim. classification: posted (amounts applied to the claim), reversal (status
-- 22: undid the claim's earlier posting), duplicate (the claim already had a posting: the
-- money is an overpayment, nothing applied), unmatched. reversed_by is set on a posting a
-- later reversal undid.
CREATE TABLE remittance_claims (
    id                   uuid    PRIMARY KEY,
    remittance_id        uuid    NOT NULL REFERENCES remittances (id),
    position             integer NOT NULL,
    claim_id             uuid    NULL REFERENCES claims (id),
    clinic_id            uuid    NULL,
    patient_control      text    NOT NULL,
    payer_claim_number   text    NOT NULL DEFAULT '',
    status_code          text    NOT NULL,
    charged_cents        bigint  NOT NULL,
    paid_cents           bigint  NOT NULL,
    patient_resp_cents   bigint  NOT NULL,
    contractual_cents    bigint  NOT NULL DEFAULT 0,
    -- Claim-level CAS: [{"group","reason","amount_cents"}].
    adjustments          jsonb   NOT NULL DEFAULT '[]',
    classification       text    NOT NULL CHECK (classification IN ('posted', 'reversal', 'duplicate', 'unmatched')),
    claim_status         text    NOT NULL DEFAULT '',
    reversed_by          uuid    NULL REFERENCES remittance_claims (id),
    UNIQUE (remittance_id, position)
);
CREATE INDEX remittance_claims_claim_idx ON remittance_claims (claim_id);

-- One SVC loop: matched to a claim line (REF*6R, else procedure and service date) or not.
-- classification: paid, contractual, patient_responsibility, denied, underpaid, overpaid,
-- unmatched, reversal, duplicate. variance = expected - paid - patient resp - contractual.
CREATE TABLE remittance_lines (
    id                  uuid    PRIMARY KEY,
    remittance_claim_id uuid    NOT NULL REFERENCES remittance_claims (id),
    position            integer NOT NULL,
    claim_id            uuid    NULL,
    line_number         integer NULL,
    charge_id           uuid    NULL REFERENCES charges (id),
    procedure_code      text    NOT NULL DEFAULT '',
    service_date        text    NOT NULL DEFAULT '',
    line_control        text    NOT NULL DEFAULT '',
    expected_cents      bigint  NOT NULL,
    charged_cents       bigint  NOT NULL,
    paid_cents          bigint  NOT NULL,
    patient_resp_cents  bigint  NOT NULL,
    contractual_cents   bigint  NOT NULL,
    variance_cents      bigint  NOT NULL,
    -- [{"group","reason","amount_cents"}] plus the RARC remarks in remarks.
    adjustments         jsonb   NOT NULL DEFAULT '[]',
    remarks             text[]  NOT NULL DEFAULT '{}',
    classification      text    NOT NULL CHECK (classification IN ('paid', 'contractual', 'patient_responsibility',
                            'denied', 'underpaid', 'overpaid', 'unmatched', 'reversal', 'duplicate')),
    UNIQUE (remittance_claim_id, position),
    FOREIGN KEY (claim_id, line_number) REFERENCES claim_lines (claim_id, line_number)
);
CREATE INDEX remittance_lines_charge_idx ON remittance_lines (charge_id);

-- Reconciliation work queues. ref names what the item is about ("line:<remittance line id>"
-- or "claim:<remittance claim id>"): one item per queue and ref.
CREATE TABLE work_items (
    id            uuid        PRIMARY KEY,
    queue         text        NOT NULL CHECK (queue IN ('denial', 'underpayment', 'overpayment', 'unmatched')),
    ref           text        NOT NULL,
    remittance_id uuid        NOT NULL REFERENCES remittances (id),
    claim_id      uuid        NULL REFERENCES claims (id),
    clinic_id     uuid        NULL,
    payer_id      text        NOT NULL DEFAULT '',
    amount_cents  bigint      NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    appeal_status text        NOT NULL DEFAULT 'none' CHECK (appeal_status IN ('none', 'appealed', 'won', 'lost')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (queue, ref),
    CHECK (queue = 'denial' OR appeal_status = 'none')
);
CREATE INDEX work_items_queue_idx ON work_items (queue, status, clinic_id);

-- A patient account's movements; accounts.balance_cents is their sum. ref makes each posting
-- once only ("pr:<remittance claim id>", "reversal:<remittance claim id>").
CREATE TABLE ledger_entries (
    id            uuid        PRIMARY KEY,
    account_id    uuid        NOT NULL REFERENCES accounts (id),
    kind          text        NOT NULL CHECK (kind IN ('patient_responsibility', 'payment', 'adjustment')),
    amount_cents  bigint      NOT NULL,
    ref           text        NOT NULL UNIQUE,
    claim_id      uuid        NULL REFERENCES claims (id),
    remittance_id uuid        NULL REFERENCES remittances (id),
    created_at    timestamptz NOT NULL
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id, created_at);

-- A patient statement: the balance an account owes and when it is due. Amounts and dates only.
CREATE TABLE statements (
    id            uuid        PRIMARY KEY,
    account_id    uuid        NOT NULL REFERENCES accounts (id),
    balance_cents bigint      NOT NULL,
    due_date      date        NOT NULL,
    remittance_id uuid        NULL REFERENCES remittances (id),
    issued_at     timestamptz NOT NULL
);
CREATE INDEX statements_account_idx ON statements (account_id, issued_at);

-- +goose Down
DROP TABLE statements;
DROP TABLE ledger_entries;
DROP TABLE work_items;
DROP TABLE remittance_lines;
DROP TABLE remittance_claims;
DROP TABLE remittances;
