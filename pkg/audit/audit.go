// Package audit keeps the PHI audit trail of a service: an append-only, hash-chained table
// audit_log in the service's own schema, with one row per call that reads or changes a
// patient's records (who, which patients, what, when, from where, and whether it was allowed).
//
// Each row carries prev_hash (the previous row's hash; 32 zero bytes for the first) and hash =
// SHA-256(prev_hash || canonical content), computed under a transaction-scoped advisory lock so
// that concurrent requests, on every replica, extend one chain. Triggers refuse UPDATE, DELETE
// and TRUNCATE for every role (the service's role owns its schema, so a REVOKE would not bind
// it). Verify walks the chain and reports the first row that does not fit.
//
// A row holds ids only: patient and referral ids, the token's subject and roles, the procedure,
// the outcome code, the request id, the client address and user agent; never names or request
// bodies.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades audit_log in schema, versioned in its own goose table
// (audit_db_version), like the bus tables.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return pg.Migrate(ctx, pool, schema, "audit_db_version", sub, log)
}

// Access is what a call does to the records it names.
type Access string

// Accesses.
const (
	Read   Access = "read"
	Change Access = "change"
)

// Outcomes besides Connect's codes (permission_denied, not_found, invalid_argument, ...).
const (
	OutcomeOK      = "ok"
	OutcomeStarted = "started" // a change about to run (written before the handler; see pkg/rpc)
)

// MaxIDsPerRow caps the patient (and referral) ids of one row; Append spreads more over
// several rows, so a list of 500 patients is recorded in full.
const MaxIDsPerRow = 100

// Entry is one audited access.
type Entry struct {
	At           time.Time // UTC, microseconds (as Postgres keeps it); zero: now
	Service      string
	RequestID    string
	Subject      string // the token's subject; "" when the caller was not authenticated
	Roles        []string
	Procedure    string
	Access       Access
	Outcome      string
	PatientIDs   []string // UUIDs
	ReferralIDs  []string // UUIDs
	RecordIDs    []string // other records of a patient the request names: "episode_id=<uuid>"
	ClientIP     string
	ForwardedFor string
	UserAgent    string
}

// Row is a stored Entry with its place in the chain.
type Row struct {
	Seq int64 `json:"seq"`
	Entry
	PrevHash []byte `json:"-"`
	Hash     []byte `json:"-"`
}

// MarshalJSON writes a row for the query API (snake_case, hashes in hex).
func (r Row) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Seq          int64    `json:"seq"`
		At           string   `json:"at"`
		Service      string   `json:"service"`
		RequestID    string   `json:"request_id"`
		Subject      string   `json:"subject"`
		Roles        []string `json:"roles"`
		Procedure    string   `json:"procedure"`
		Access       Access   `json:"access"`
		Outcome      string   `json:"outcome"`
		PatientIDs   []string `json:"patient_ids"`
		ReferralIDs  []string `json:"referral_ids"`
		RecordIDs    []string `json:"record_ids"`
		ClientIP     string   `json:"client_ip"`
		ForwardedFor string   `json:"forwarded_for"`
		UserAgent    string   `json:"user_agent"`
		PrevHash     string   `json:"prev_hash"`
		Hash         string   `json:"hash"`
	}{r.Seq, r.At.UTC().Format(time.RFC3339Nano), r.Service, r.RequestID, r.Subject, nonNil(r.Roles), r.Procedure,
		r.Access, r.Outcome, nonNil(r.PatientIDs), nonNil(r.ReferralIDs), nonNil(r.RecordIDs), r.ClientIP, r.ForwardedFor, r.UserAgent,
		hex.EncodeToString(r.PrevHash), hex.EncodeToString(r.Hash)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// genesis is the prev_hash of the first row.
var genesis = make([]byte, sha256.Size)

// Canonical is the byte string a row's hash covers (after prev_hash): a JSON array of its
// fields in a fixed order, the time in RFC 3339 with microseconds in UTC. A row naming other
// records (RecordIDs) has the form "v2", with them at the end; other rows keep "v1", the form of
// the rows written before the column existed.
func (e Entry) Canonical() []byte {
	fields := []any{
		"v1", e.At.UTC().Format("2006-01-02T15:04:05.000000Z"), e.Service, e.RequestID, e.Subject, nonNil(e.Roles),
		e.Procedure, string(e.Access), e.Outcome, nonNil(e.PatientIDs), nonNil(e.ReferralIDs), e.ClientIP,
		e.ForwardedFor, e.UserAgent,
	}
	if len(e.RecordIDs) > 0 {
		fields[0] = "v2"
		fields = append(fields, e.RecordIDs)
	}
	b, _ := json.Marshal(fields)
	return b
}

// ChainHash is SHA-256(prev || content).
func ChainHash(prev, content []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(content)
	return h.Sum(nil)
}

// Log appends to and reads a service's audit_log (the pool's search_path is the schema).
type Log struct {
	pool    *pgxpool.Pool
	service string
	now     func() time.Time

	mu      sync.Mutex // guards pending and writing (group commit)
	pending []*appendReq
	writing bool
}

// New returns the audit log of service on pool.
func New(pool *pgxpool.Pool, service string) *Log {
	return &Log{pool: pool, service: service, now: time.Now}
}

// Service is the name rows are written with.
func (l *Log) Service() string { return l.service }

// clean makes s storable (Postgres text holds no NUL, and must be UTF-8) and bounded.
func clean(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// normalizeIDs keeps the UUIDs of ids, lower-case, without repeats; anything else is dropped
// (an id field of a refused request may hold any text, and text is not recorded).
func normalizeIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || len(id) != 36 {
			continue
		}
		s := u.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// normalizeRefs keeps the "field=<uuid>" references of refs (field: a lower-case name ending in
// _id), the UUID lower-case, without repeats.
func normalizeRefs(refs []string) []string {
	out := make([]string, 0, len(refs))
	seen := map[string]bool{}
	for _, r := range refs {
		field, id, ok := strings.Cut(r, "=")
		if !ok || !pg.ValidIdent(field) || !strings.HasSuffix(field, "_id") || len(field) > 40 {
			continue
		}
		u, err := uuid.Parse(id)
		if err != nil || len(id) != 36 {
			continue
		}
		ref := field + "=" + u.String()
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out
}

func (l *Log) normalize(e Entry) Entry {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	if e.Service == "" {
		e.Service = l.service
	}
	e.RequestID = clean(e.RequestID, 64)
	e.Subject = clean(e.Subject, 256)
	roles := make([]string, 0, len(e.Roles))
	for _, r := range e.Roles {
		if len(roles) < 20 {
			roles = append(roles, clean(r, 64))
		}
	}
	e.Roles = roles
	e.Procedure = clean(e.Procedure, 256)
	e.Outcome = clean(e.Outcome, 64)
	e.PatientIDs, e.ReferralIDs = normalizeIDs(e.PatientIDs), normalizeIDs(e.ReferralIDs)
	e.RecordIDs = normalizeRefs(e.RecordIDs)
	e.ClientIP = clean(e.ClientIP, 64)
	e.ForwardedFor = clean(e.ForwardedFor, 256)
	e.UserAgent = clean(e.UserAgent, 256)
	return e
}

// split spreads an entry naming more than MaxIDsPerRow patients, referrals or records over
// several rows.
func split(e Entry) []Entry {
	var out []Entry
	p, r, rec := e.PatientIDs, e.ReferralIDs, e.RecordIDs
	for first := true; first || len(p) > 0 || len(r) > 0 || len(rec) > 0; first = false {
		c := e
		c.PatientIDs, p = p[:min(len(p), MaxIDsPerRow)], p[min(len(p), MaxIDsPerRow):]
		c.ReferralIDs, r = r[:min(len(r), MaxIDsPerRow)], r[min(len(r), MaxIDsPerRow):]
		c.RecordIDs, rec = rec[:min(len(rec), MaxIDsPerRow)], rec[min(len(rec), MaxIDsPerRow):]
		out = append(out, c)
	}
	return out
}

const insertSQL = `INSERT INTO audit_log (at, service, request_id, subject, roles, procedure, access, outcome,
	patient_ids, referral_ids, client_ip, forwarded_for, user_agent, prev_hash, hash, record_ids)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9::uuid[], $10::uuid[], $11, $12, $13, h.prev, sha256(h.prev || $14::bytea), $16
FROM (SELECT coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), $15::bytea) AS prev) h`

// lockSQL serializes appends to one schema's chain (on every replica) until the transaction ends.
const lockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('trellis-audit:' || current_schema(), 0))`

// Append writes the entries at the end of the chain, all or none, and returns once they are
// committed. Ids that are not UUIDs are dropped; more than MaxIDsPerRow ids make several rows.
//
// Appends are serialized (one chain), so concurrent calls are committed together: the first
// caller writes every entry waiting at that moment in one transaction (one lock, one WAL
// flush), and the others wait for it (group commit); the next waiting caller writes the next
// group. When such a group fails, each call's
// entries are tried again alone, so one call's failure is not another's.
func (l *Log) Append(ctx context.Context, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	r := &appendReq{entries: entries, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	l.mu.Lock()
	l.pending = append(l.pending, r)
	if l.writing {
		l.mu.Unlock()
		select {
		case err := <-r.done: // written by another caller (within appendTimeout)
			return err
		case <-r.lead: // the previous writer is done: write what is waiting, r first
		}
	} else {
		l.writing = true
		l.mu.Unlock()
	}
	l.mu.Lock()
	group := l.pending
	l.pending = nil
	l.mu.Unlock()
	l.writeGroup(ctx, group)
	l.mu.Lock()
	if len(l.pending) > 0 {
		l.pending[0].lead <- struct{}{} // hand over: each caller writes at most one group
	} else {
		l.writing = false
	}
	l.mu.Unlock()
	return <-r.done
}

// appendTimeout bounds one group's transaction (the writer may be writing others' entries).
const appendTimeout = 10 * time.Second

type appendReq struct {
	entries []Entry
	done    chan error
	lead    chan struct{}
}

func (l *Log) writeGroup(ctx context.Context, group []*appendReq) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	err := l.write(ctx, group)
	if err != nil && len(group) > 1 {
		for _, r := range group {
			r.done <- l.write(ctx, []*appendReq{r})
		}
		return
	}
	for _, r := range group {
		r.done <- err
	}
}

func (l *Log) write(ctx context.Context, group []*appendReq) error {
	b := &pgx.Batch{}
	b.Queue(lockSQL)
	for _, req := range group {
		for _, e := range req.entries {
			for _, r := range split(l.normalize(e)) {
				b.Queue(insertSQL, r.At, r.Service, r.RequestID, r.Subject, r.Roles, r.Procedure, string(r.Access),
					r.Outcome, r.PatientIDs, r.ReferralIDs, r.ClientIP, r.ForwardedFor, r.UserAgent, r.Canonical(), genesis,
					nonNil(r.RecordIDs))
			}
		}
	}
	err := pg.InTx(ctx, l.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

const columns = `seq, at, service, request_id, subject, roles, procedure, access, outcome,
	patient_ids::text[], referral_ids::text[], client_ip, forwarded_for, user_agent, prev_hash, hash, record_ids`

func scanRow(rows pgx.CollectableRow) (Row, error) {
	var r Row
	var access string
	err := rows.Scan(&r.Seq, &r.At, &r.Service, &r.RequestID, &r.Subject, &r.Roles, &r.Procedure, &access, &r.Outcome,
		&r.PatientIDs, &r.ReferralIDs, &r.ClientIP, &r.ForwardedFor, &r.UserAgent, &r.PrevHash, &r.Hash, &r.RecordIDs)
	r.Access = Access(access)
	r.At = r.At.UTC()
	return r, err
}

// Filter selects rows for Query.
type Filter struct {
	PatientID  string    // rows naming this patient
	ReferralID string    // rows naming this referral
	RecordID   string    // rows naming this record (an episode, a consent...): its UUID
	From, To   time.Time // [From, To); zero: unbounded
	AfterSeq   int64     // rows after this sequence number (paging)
	Limit      int       // at most this many (default 100, at most 1000)
}

// Query returns the rows matching f, oldest first.
func (l *Log) Query(ctx context.Context, f Filter) ([]Row, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.PatientID != "" {
		add("patient_ids @> ARRAY[$%d::uuid]", f.PatientID)
	}
	if f.ReferralID != "" {
		add("referral_ids @> ARRAY[$%d::uuid]", f.ReferralID)
	}
	if f.RecordID != "" {
		add("EXISTS (SELECT 1 FROM unnest(record_ids) r WHERE split_part(r, '=', 2) = $%d)", f.RecordID)
	}
	if !f.From.IsZero() {
		add("at >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("at < $%d", f.To)
	}
	if f.AfterSeq > 0 {
		add("seq > $%d", f.AfterSeq)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	q := "SELECT " + columns + " FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY seq LIMIT %d", limit)
	rows, err := l.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: query: %w", err)
	}
	return pgx.CollectRows(rows, scanRow)
}

// Verification is what Verify found.
type Verification struct {
	Rows     int64  `json:"rows"`      // rows checked
	Head     string `json:"head"`      // hash of the last row (hex); keep it elsewhere to detect a cut tail
	OK       bool   `json:"ok"`        // every row fits the chain
	BrokenAt int64  `json:"broken_at"` // the first row that does not fit (seq); 0 when OK
	Reason   string `json:"reason,omitempty"`
}

// Verify walks the whole chain in order and reports the first row whose prev_hash is not the
// previous row's hash (a row before it was deleted, or inserted out of the chain) or whose hash
// does not match its content (the row was edited).
func (l *Log) Verify(ctx context.Context) (Verification, error) {
	var v Verification
	prev := genesis
	err := pg.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		// One snapshot, so rows appended meanwhile do not interleave with what is read.
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT "+columns+" FROM audit_log ORDER BY seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				return err
			}
			v.Rows++
			switch {
			case !bytes.Equal(r.PrevHash, prev):
				v.BrokenAt, v.Reason = r.Seq, "prev_hash is not the previous row's hash: a row before it was deleted or changed"
			case !bytes.Equal(r.Hash, ChainHash(r.PrevHash, r.Entry.Canonical())):
				v.BrokenAt, v.Reason = r.Seq, "hash does not match the row's content: the row was changed"
			}
			if v.BrokenAt != 0 {
				return nil
			}
			prev = r.Hash
		}
		return rows.Err()
	})
	if err != nil {
		return v, fmt.Errorf("audit: verify: %w", err)
	}
	v.OK = v.BrokenAt == 0
	v.Head = hex.EncodeToString(prev)
	return v, nil
}
