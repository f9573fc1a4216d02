package backfill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/fieldcrypt"
	"github.com/trellis-health/trellis/pkg/testkit"
)

// The tables of the tests, each readable only in system scope (row-level security forced on
// the owner, as the services' policies do for clinic rows).
const schemaSQL = `
CREATE TABLE people (
	id uuid PRIMARY KEY,
	email text, email_enc text, email_hash bytea,
	note text NOT NULL DEFAULT '', note_enc text
);
CREATE TABLE versions (
	doc uuid, version int, member text, member_enc text,
	PRIMARY KEY (doc, version)
);
CREATE TABLE files (id uuid PRIMARY KEY, content bytea NOT NULL);
DO $$ DECLARE t text; BEGIN
	FOREACH t IN ARRAY ARRAY['people', 'versions', 'files'] LOOP
		EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
		EXECUTE format($p$CREATE POLICY system ON %I USING (current_setting('` + bus.ClinicSetting + `', true) = '*')$p$, t);
	END LOOP;
END $$;`

var (
	people = Table{Name: "people", Keys: []string{"id"}, Fields: []Field{
		{Column: "email", Kind: fieldcrypt.KindEmail},
		{Column: "note", Plain: "NULLIF(note, '')", Clear: "''"},
	}}
	versions = Table{Name: "versions", Keys: []string{"doc", "version"}, Types: []string{"uuid", "int"}, Fields: []Field{
		{Column: "member"},
	}}
	files = Table{Name: "files", Keys: []string{"id"}, Fields: []Field{
		{Column: "content", Enc: "content", Bytes: true,
			Plain:   "CASE WHEN substring(content FOR 3) <> 'v1:'::bytea THEN encode(content, 'hex') END",
			EncRead: "CASE WHEN substring(content FOR 3) = 'v1:'::bytea THEN convert_from(content, 'UTF8') END"},
	}}
	tables = []Table{people, versions, files}
)

func setup(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := testkit.Pool(t, "backfill")
	if _, err := pool.Exec(context.Background(), schemaSQL); err != nil {
		t.Fatal(err)
	}
	return pool
}

func id(i int) string { return fmt.Sprintf("00000000-0000-7000-8000-%012d", i) }

func run(t *testing.T, ctx context.Context, pool *pgxpool.Pool, k *fieldcrypt.Keyring, opts Options) Stats {
	t.Helper()
	st := NewStats()
	if err := Run(ctx, pool, k, tables, opts, st); err != nil {
		t.Fatal(err)
	}
	return st
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if err := InTx(auth.WithSystemScope(context.Background()), pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), sql, args...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// Rows written in plaintext are sealed (bound to table, column and row key), their plaintext
// cleared and their hashes filled, across several batches and a two-column key; only in
// system scope; a second pass has nothing to do; plaintext wins over a sealed value.
func TestRunSealsPlaintextInBatchesInSystemScope(t *testing.T) {
	pool := setup(t)
	ctx := context.Background()
	k := fieldcrypt.Dev()
	const n = 7
	for i := 1; i <= n; i++ {
		exec(t, pool, `INSERT INTO people (id, email, note) VALUES ($1, $2, $3)`, id(i), fmt.Sprintf("P%d@Example.org", i), fmt.Sprintf("note %d", i))
		exec(t, pool, `INSERT INTO versions (doc, version, member) VALUES ($1, $2, $3)`, id(1), i, fmt.Sprintf("M-%d", i))
	}
	// A row an older binary rewrote in plaintext after it was sealed: the plaintext wins.
	stale, _ := k.Seal("old@example.org", fieldcrypt.AAD("people", "email", id(n+1)))
	exec(t, pool, `INSERT INTO people (id, email, email_enc) VALUES ($1, 'new@example.org', $2)`, id(n+1), stale)
	file := []byte("ISA*00*\xff\x00binary~")
	exec(t, pool, `INSERT INTO files (id, content) VALUES ($1, $2)`, id(1), file)

	if st := run(t, ctx, pool, k, Options{Batch: 3}); Total(st.Encrypted) != 0 {
		t.Fatalf("without system scope: %v, want nothing (row-level security hides every row)", st.Encrypted)
	}
	sys := auth.WithSystemScope(ctx)
	st := run(t, sys, pool, k, Options{Batch: 3})
	want := map[string]int{"people": n + 1, "versions": n, "files": 1}
	for table, w := range want {
		if st.Encrypted[table] != w {
			t.Errorf("encrypted %d rows of %s, want %d (%v)", st.Encrypted[table], table, w, st.Encrypted)
		}
	}
	if Total(st.Resealed)+Total(st.Rehashed) != 0 {
		t.Errorf("resealed %v, rehashed %v without -rotate or -rehash", st.Resealed, st.Rehashed)
	}

	var left int
	if err := InTx(sys, pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM people WHERE email IS NOT NULL OR note <> '' OR email_enc IS NULL OR email_hash IS NULL
				OR (note_enc IS NULL AND id <> $1))
			+ (SELECT count(*) FROM versions WHERE member IS NOT NULL OR member_enc IS NULL)`, id(n+1)).Scan(&left)
	}); err != nil || left != 0 {
		t.Fatalf("%d rows with plaintext or without sealed values (%v)", left, err)
	}
	for i := 1; i <= n+1; i++ {
		email, note, hash := readPerson(t, pool, k, id(i))
		wantEmail, wantNote := fmt.Sprintf("P%d@Example.org", i), fmt.Sprintf("note %d", i)
		if i == n+1 {
			wantEmail, wantNote = "new@example.org", ""
		}
		if email != wantEmail || note != wantNote {
			t.Errorf("row %d: %q, %q, want %q, %q", i, email, note, wantEmail, wantNote)
		}
		if h, _ := k.Hash(fieldcrypt.KindEmail, wantEmail); !bytes.Equal(hash, h) {
			t.Errorf("row %d: hash is not the keyed hash of its e-mail", i)
		}
	}
	for v := 1; v <= n; v++ {
		var enc string
		if err := InTx(sys, pool, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT member_enc FROM versions WHERE doc = $1 AND version = $2`, id(1), v).Scan(&enc)
		}); err != nil {
			t.Fatal(err)
		}
		// The AAD holds both key columns as text.
		if got, err := k.Open(enc, fieldcrypt.AAD("versions", "member", id(1), fmt.Sprint(v))); err != nil || got != fmt.Sprintf("M-%d", v) {
			t.Errorf("version %d: %q, %v", v, got, err)
		}
	}
	if got := readFile(t, pool, k, id(1)); !bytes.Equal(got, file) {
		t.Errorf("file opens as %q, want %q", got, file)
	}

	if again := run(t, sys, pool, k, Options{Batch: 3}); Total(again.Encrypted)+Total(again.Resealed)+Total(again.Rehashed) != 0 {
		t.Errorf("second pass changed %v", again)
	}
}

// -rotate moves every sealed value (in place too) to the active key and -rehash recomputes
// the hashes under the new hash key; after them the old key can be retired; a second run has
// nothing to do.
func TestRunRotatesAndRehashes(t *testing.T) {
	pool := setup(t)
	sys := auth.WithSystemScope(context.Background())
	old := fieldcrypt.Dev()
	for i := 1; i <= 4; i++ {
		exec(t, pool, `INSERT INTO people (id, email) VALUES ($1, $2)`, id(i), fmt.Sprintf("p%d@example.org", i))
		exec(t, pool, `INSERT INTO versions (doc, version, member) VALUES ($1, $2, 'M')`, id(i), i)
	}
	exec(t, pool, `INSERT INTO files (id, content) VALUES ($1, 'ISA*file~')`, id(1))
	run(t, sys, pool, old, Options{})

	newKey, newHash := fieldcrypt.NewKey(), fieldcrypt.NewKey()
	k2, err := fieldcrypt.Parse("k_2:"+newKey+","+fieldcrypt.DevKeys, newHash)
	if err != nil {
		t.Fatal(err)
	}
	if st := run(t, sys, pool, k2, Options{Batch: 3}); Total(st.Resealed)+Total(st.Rehashed)+Total(st.Encrypted) != 0 {
		t.Errorf("without -rotate or -rehash: %v", st)
	}
	st := run(t, sys, pool, k2, Options{Rotate: true, Rehash: true, Batch: 3})
	for table, w := range map[string]int{"people": 4, "versions": 4, "files": 1} {
		if st.Resealed[table] != w {
			t.Errorf("resealed %d rows of %s, want %d", st.Resealed[table], table, w)
		}
	}
	// Only people has a hash; versions and files have none to recompute.
	if st.Rehashed["people"] != 4 || len(st.Rehashed) != 1 {
		t.Errorf("rehashed %v, want people: 4", st.Rehashed)
	}
	if again := run(t, sys, pool, k2, Options{Rotate: true, Batch: 3}); Total(again.Resealed) != 0 {
		t.Errorf("second -rotate resealed %v", again.Resealed)
	}
	// The old key retired: everything opens with the new one alone.
	newOnly, err := fieldcrypt.Parse("k_2:"+newKey, newHash)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		var enc string
		var hash []byte
		if err := InTx(sys, pool, func(tx pgx.Tx) error {
			return tx.QueryRow(sys, `SELECT email_enc, email_hash FROM people WHERE id = $1`, id(i)).Scan(&enc, &hash)
		}); err != nil {
			t.Fatal(err)
		}
		if v, err := newOnly.Open(enc, fieldcrypt.AAD("people", "email", id(i))); err != nil || v != fmt.Sprintf("p%d@example.org", i) {
			t.Errorf("row %d after -rotate, with the new key alone: %q, %v", i, v, err)
		}
		if h, _ := k2.Hash(fieldcrypt.KindEmail, fmt.Sprintf("p%d@example.org", i)); !bytes.Equal(hash, h) {
			t.Errorf("row %d: hash is not the new hash key's", i)
		}
	}
	var content []byte
	if err := InTx(sys, pool, func(tx pgx.Tx) error {
		return tx.QueryRow(sys, `SELECT content FROM files WHERE id = $1`, id(1)).Scan(&content)
	}); err != nil {
		t.Fatal(err)
	}
	if v, err := newOnly.Open(string(content), fieldcrypt.AAD("files", "content", id(1))); err != nil || v != "ISA*file~" {
		t.Errorf("file after -rotate, with the new key alone: %q, %v", v, err)
	}
}

// A sealed value moved to another row does not open: the pass fails naming the table, column
// and row, never the value.
func TestRunErrorNamesThePlaceNotTheValue(t *testing.T) {
	pool := setup(t)
	sys := auth.WithSystemScope(context.Background())
	k := fieldcrypt.Dev()
	moved, _ := k.Seal("secret@example.org", fieldcrypt.AAD("people", "email", id(1)))
	exec(t, pool, `INSERT INTO people (id, email_enc) VALUES ($1, $2)`, id(2), moved)
	k2, _ := fieldcrypt.Parse("k2:"+fieldcrypt.NewKey()+","+fieldcrypt.DevKeys, fieldcrypt.DevHashKey)
	err := Run(sys, pool, k2, tables, Options{Rotate: true}, NewStats())
	if !errors.Is(err, fieldcrypt.ErrOpen) || !strings.Contains(err.Error(), "people.email of "+id(2)) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v, want ErrOpen naming people.email of %s and not the value", err, id(2))
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		hashes bool
		want   Options
		err    string
	}{
		{nil, true, Options{}, ""},
		{[]string{"-rotate", "-rehash"}, true, Options{Rotate: true, Rehash: true}, ""},
		{[]string{"-rotate"}, false, Options{Rotate: true}, ""},
		{[]string{"-rehash"}, false, Options{}, "not defined: -rehash"},
		{[]string{"extra"}, true, Options{}, "takes only -rotate and -rehash"},
		{[]string{"-rotate", "extra"}, false, Options{}, "takes only -rotate, got"},
	} {
		got, err := parseFlags(tc.args, tc.hashes)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("parseFlags(%q, %v) = %+v, %v, want %+v", tc.args, tc.hashes, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseFlags(%q, %v): err %v, want %q", tc.args, tc.hashes, err, tc.err)
		}
	}
}

// The command checks its flags before the keys, runs the pass in system scope with the
// options of its flags and logs counts (rehashed only where there are hashes); AtStart runs it
// in system scope with no options.
func TestCommandAndAtStart(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	keys := 0
	keyring := func() (*fieldcrypt.Keyring, error) { keys++; return fieldcrypt.Dev(), nil }
	var gotOpts Options
	var scoped bool
	pass := func(ctx context.Context, _ *pgxpool.Pool, k *fieldcrypt.Keyring, opts Options) (Stats, error) {
		gotOpts, scoped = opts, auth.IsSystemScope(ctx)
		st := NewStats()
		st.Encrypted["a"], st.Encrypted["b"], st.Resealed["a"], st.Rehashed["b"] = 2, 3, 4, 5
		return st, nil
	}
	ctx := context.Background()
	if err := Command(ctx, log, nil, []string{"-bogus"}, true, keyring, pass); err == nil || keys != 0 {
		t.Fatalf("bad flag: err %v, keyring read %d times", err, keys)
	}
	if err := Command(ctx, log, nil, []string{"-rotate", "-rehash"}, true, keyring, pass); err != nil {
		t.Fatal(err)
	}
	if !scoped || gotOpts != (Options{Rotate: true, Rehash: true}) {
		t.Errorf("pass ran with %+v, system scope %v", gotOpts, scoped)
	}
	if out := logged.String(); !strings.Contains(out, "encrypted=5 resealed=4 rehashed=5") || !strings.Contains(out, "active_key=dev1") {
		t.Errorf("logged %q", out)
	}
	logged.Reset()
	if err := Command(ctx, log, nil, []string{"-rotate"}, false, keyring, pass); err != nil {
		t.Fatal(err)
	}
	if out := logged.String(); strings.Contains(out, "rehashed") {
		t.Errorf("without hashes logged %q", out)
	}
	noKeys := errors.New("FIELD_KEYS is not set")
	if err := Command(ctx, log, nil, nil, true, func() (*fieldcrypt.Keyring, error) { return nil, noKeys }, pass); !errors.Is(err, noKeys) {
		t.Errorf("without keys: %v", err)
	}
	gotOpts, scoped = Options{Rotate: true}, false
	logged.Reset()
	if err := AtStart(ctx, log, nil, fieldcrypt.Dev(), pass); err != nil {
		t.Fatal(err)
	}
	if !scoped || gotOpts != (Options{}) || !strings.Contains(logged.String(), "rows=5") {
		t.Errorf("AtStart: %+v, system scope %v, logged %q", gotOpts, scoped, logged.String())
	}
}

// readPerson is a person's e-mail and note opened with k, and the e-mail's hash.
func readPerson(t *testing.T, pool *pgxpool.Pool, k *fieldcrypt.Keyring, row string) (email, note string, hash []byte) {
	t.Helper()
	ctx := auth.WithSystemScope(context.Background())
	var emailEnc, noteEnc *string
	if err := InTx(ctx, pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT email_enc, note_enc, email_hash FROM people WHERE id = $1`, row).Scan(&emailEnc, &noteEnc, &hash)
	}); err != nil {
		t.Fatal(err)
	}
	open := func(s *string, column string) string {
		if s == nil {
			return ""
		}
		v, err := k.Open(*s, fieldcrypt.AAD("people", column, row))
		if err != nil {
			t.Fatalf("people.%s of %s: %v", column, row, err)
		}
		return v
	}
	return open(emailEnc, "email"), open(noteEnc, "note"), hash
}

// readFile is a file sealed in place, opened with k.
func readFile(t *testing.T, pool *pgxpool.Pool, k *fieldcrypt.Keyring, row string) []byte {
	t.Helper()
	ctx := auth.WithSystemScope(context.Background())
	var content []byte
	if err := InTx(ctx, pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT content FROM files WHERE id = $1`, row).Scan(&content)
	}); err != nil {
		t.Fatal(err)
	}
	v, err := k.Open(string(content), fieldcrypt.AAD("files", "content", row))
	if err != nil {
		t.Fatalf("files.content of %s: %v", row, err)
	}
	return []byte(v)
}
