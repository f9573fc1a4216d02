package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"
)

// Appointment is a place whose session has started, so attendance may be recorded on it and
// corrected as often as one likes (scheduling: every value that differs from the current one
// is a new version and one AttendanceRecorded event).
type Appointment struct {
	ID        string
	Session   string // its session's id
	Scheduled int32  // minutes
	step      int    // index in cycle of the current value
	busy      atomic.Bool
}

// The values a correction cycles through: each differs from the one before, so each call is
// one event; present and late move a per-service individual visit between codes and a
// per-diem day across its minimum (a new charge, or a void), absent reaches notification.
var cycle = []schedulingv1.AttendanceStatus{
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE,
	schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT,
}

var statusStep = map[string]int{"present": 0, "late": 1, "left_early": 1, "absent": 2, "excused": 2}

// LoadAppointments reads, from scheduling's tables (read-only: a measuring tool may; a
// service never does), the scheduled places of sessions that started at least a minute ago,
// with their current attendance.
func LoadAppointments(ctx context.Context, pool *pgxpool.Pool) ([]*Appointment, error) {
	rows, err := pool.Query(ctx, `
		SELECT a.id::text, a.session_id::text, (extract(epoch FROM s.ends_at - s.starts_at) / 60)::int, coalesce(c.status, '')
		FROM scheduling.appointments a
		JOIN scheduling.sessions s ON s.id = a.session_id
		LEFT JOIN (SELECT DISTINCT ON (appointment_id) appointment_id, status FROM scheduling.attendance
		           ORDER BY appointment_id, version DESC) c ON c.appointment_id = a.id
		WHERE a.status = 'scheduled' AND s.status = 'scheduled' AND s.starts_at < now() - interval '1 minute'
		ORDER BY s.starts_at, a.id`)
	if err != nil {
		return nil, fmt.Errorf("appointments: %w", err)
	}
	defer rows.Close()
	var out []*Appointment
	for rows.Next() {
		a := &Appointment{}
		var status string
		if err := rows.Scan(&a.ID, &a.Session, &a.Scheduled, &status); err != nil {
			return nil, err
		}
		if a.Scheduled < 2 {
			continue
		}
		a.step = -1
		if s, ok := statusStep[status]; ok {
			a.step = s
		}
		out = append(out, a)
	}
	// A fixed shuffle: calls in flight at once fall on different sessions, as different
	// clinicians' would, instead of queueing on one group session's lock.
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, rows.Err()
}

// MaxSessionEntries is the most entries RecordGroupAttendance takes in one call.
const MaxSessionEntries = 100

// Session is the places of one session that the driver records in one RecordGroupAttendance
// call (a session of more than MaxSessionEntries places is split into several).
type Session struct {
	ID    string
	Appts []*Appointment
	busy  atomic.Bool
}

// Sessions groups appointments by their session, in the order each session first appears in
// appts (LoadAppointments shuffles them, so calls in flight at once fall on different
// sessions). Scheduling's RecordGroupAttendance takes any session, group or individual, whose
// start has passed, with entries that are scheduled places of that session (a cancelled place
// is refused; every entry or none is recorded): LoadAppointments reads exactly those.
func Sessions(appts []*Appointment) []*Session {
	var out []*Session
	open := map[string]*Session{}
	for _, a := range appts {
		s := open[a.Session]
		if s == nil || len(s.Appts) == MaxSessionEntries {
			s = &Session{ID: a.Session}
			open[a.Session] = s
			out = append(out, s)
		}
		s.Appts = append(s.Appts, a)
	}
	return out
}

// Mode is how the driver records attendance.
type Mode int

const (
	// PerAppointment is one RecordAttendance call per correction: one event per API call
	// and per scheduling transaction, the worst case.
	PerAppointment Mode = iota
	// PerSession is one RecordGroupAttendance call per session with every place's next value,
	// as staff record a group session: one event per place, one call and transaction for all.
	PerSession
)

// Label names the mode in the report.
func (m Mode) Label() string {
	if m == PerSession {
		return "a session per call"
	}
	return "one correction per call"
}

// Driver records attendance through scheduling's API, one appointment or one session a call.
// The two modes share the appointments (and their current values) and run one after the
// other, never at once.
type Driver struct {
	Client   schedulingv1connect.SchedulingServiceClient
	Appts    []*Appointment
	Sessions []*Session // Sessions(Appts)
	Tracker  *Tracker
	RunID    string // scopes idempotency keys

	next     atomic.Int64
	seq      atomic.Int64
	calls    atomic.Int64
	accepted atomic.Int64
	errs     atomic.Int64
	busy     atomic.Int64
	lastErr  atomic.Value
}

// Load is what a phase's calls did.
type Load struct {
	Calls    int64 // API calls accepted
	Accepted int64 // attendance events they carried
	Errors   int64 // failed calls
	Skipped  int64 // calls of a fixed rate not made: every worker, appointment or session busy
}

// EventsPerCall is the mean number of events a call of mode carries.
func (d *Driver) EventsPerCall(m Mode) float64 {
	if m == PerSession && len(d.Sessions) > 0 {
		return float64(len(d.Appts)) / float64(len(d.Sessions))
	}
	return 1
}

func (d *Driver) call(ctx context.Context, m Mode) {
	if m == PerSession {
		d.session(ctx)
	} else {
		d.one(ctx)
	}
}

func (d *Driver) failed(ctx context.Context, err error) {
	if ctx.Err() == nil {
		d.errs.Add(1)
		d.lastErr.Store(err.Error())
	}
}

// entry is a's next value in the cycle.
func entry(a *Appointment) (*schedulingv1.AttendanceEntry, int) {
	step := (a.step + 1) % len(cycle)
	e := &schedulingv1.AttendanceEntry{AppointmentId: a.ID, Status: cycle[step]}
	if cycle[step] == schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE {
		e.MinutesAttended = a.Scheduled / 2
	}
	return e, step
}

// NewSchedulingClient is a Connect client with a bearer token.
func NewSchedulingClient(hc *http.Client, baseURL, token string) schedulingv1connect.SchedulingServiceClient {
	return schedulingv1connect.NewSchedulingServiceClient(hc, baseURL, connect.WithInterceptors(Bearer(token)))
}

// Bearer adds Authorization: Bearer token to every call.
func Bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// one records the next value of the next free appointment.
func (d *Driver) one(ctx context.Context) {
	var a *Appointment
	for range len(d.Appts) {
		c := d.Appts[int(d.next.Add(1)-1)%len(d.Appts)]
		if c.busy.CompareAndSwap(false, true) {
			a = c
			break
		}
	}
	if a == nil { // every appointment has a call in flight
		d.busy.Add(1)
		return
	}
	defer a.busy.Store(false)
	e, step := entry(a)
	resp, err := d.Client.RecordAttendance(ctx, connect.NewRequest(&schedulingv1.RecordAttendanceRequest{
		Entry: e, IdempotencyKey: fmt.Sprintf("bench-%s-%d", d.RunID, d.seq.Add(1))}))
	if err != nil {
		d.failed(ctx, err)
		return
	}
	accepted := time.Now()
	a.step = step
	d.calls.Add(1)
	d.accepted.Add(1)
	if d.Tracker != nil {
		d.Tracker.Add(a.ID, resp.Msg.GetAttendance().GetVersion(), accepted)
	}
}

// session records the next value of every place of the next free session in one call: each
// entry differs from its place's current value, so each is one event.
func (d *Driver) session(ctx context.Context) {
	var s *Session
	for range len(d.Sessions) {
		c := d.Sessions[int(d.next.Add(1)-1)%len(d.Sessions)]
		if c.busy.CompareAndSwap(false, true) {
			s = c
			break
		}
	}
	if s == nil { // every session has a call in flight
		d.busy.Add(1)
		return
	}
	defer s.busy.Store(false)
	entries := make([]*schedulingv1.AttendanceEntry, len(s.Appts))
	steps := make([]int, len(s.Appts))
	for i, a := range s.Appts {
		entries[i], steps[i] = entry(a)
	}
	resp, err := d.Client.RecordGroupAttendance(ctx, connect.NewRequest(&schedulingv1.RecordGroupAttendanceRequest{
		SessionId: s.ID, Entries: entries, IdempotencyKey: fmt.Sprintf("bench-%s-%d", d.RunID, d.seq.Add(1))}))
	if err != nil {
		d.failed(ctx, err)
		return
	}
	accepted := time.Now()
	got := resp.Msg.GetAttendance() // in the order of the entries
	if len(got) != len(s.Appts) {
		d.failed(ctx, fmt.Errorf("RecordGroupAttendance answered %d entries for %d", len(got), len(s.Appts)))
		return
	}
	d.calls.Add(1)
	d.accepted.Add(int64(len(s.Appts)))
	for i, a := range s.Appts {
		a.step = steps[i]
		if d.Tracker != nil {
			d.Tracker.Add(a.ID, got[i].GetVersion(), accepted)
		}
	}
}

func (d *Driver) load() Load {
	return Load{Calls: d.calls.Load(), Accepted: d.accepted.Load(), Errors: d.errs.Load(), Skipped: d.busy.Load()}
}

func (l Load) since(l0 Load) Load {
	return Load{Calls: l.Calls - l0.Calls, Accepted: l.Accepted - l0.Accepted, Errors: l.Errors - l0.Errors, Skipped: l.Skipped - l0.Skipped}
}

// LastError is the last API error, if any.
func (d *Driver) LastError() string {
	s, _ := d.lastErr.Load().(string)
	return s
}

// Fixed offers rate events per second for dur in calls of mode m (rate / EventsPerCall(m)
// calls per second) with at most workers in flight; a call that finds every worker (or every
// appointment or session) busy is skipped (counted), not queued, so the offered load stays
// open.
func (d *Driver) Fixed(ctx context.Context, m Mode, rate float64, workers int, dur time.Duration) Load {
	l0 := d.load()
	callRate := rate / d.EventsPerCall(m)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	began := time.Now()
	var issued, skipped int64
	for ctx.Err() == nil {
		el := time.Since(began)
		if el >= dur {
			break
		}
		due := int64(el.Seconds() * callRate)
		for ; issued < due; issued++ {
			select {
			case sem <- struct{}{}:
				wg.Go(func() { defer func() { <-sem }(); d.call(ctx, m) })
			default:
				skipped++
			}
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	l := d.load().since(l0)
	l.Skipped += skipped
	return l
}

// Saturate runs workers callers of mode m back to back for dur.
func (d *Driver) Saturate(ctx context.Context, m Mode, workers int, dur time.Duration) Load {
	l0 := d.load()
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				d.call(ctx, m)
			}
		})
	}
	wg.Wait()
	return d.load().since(l0)
}

// Tracker observes when billing has committed each accepted attendance version: it polls
// billing's copy of attendance (the copy and the charges are written in one transaction by
// billing's consumer), so the latency it reports includes up to one poll interval.
type Tracker struct {
	Pool     *pgxpool.Pool
	Interval time.Duration

	mu      sync.Mutex
	pending map[string][]pend
	lat     []time.Duration
}

type pend struct {
	version int32
	at      time.Time
}

// NewTracker polls every interval.
func NewTracker(pool *pgxpool.Pool, interval time.Duration) *Tracker {
	return &Tracker{Pool: pool, Interval: interval, pending: map[string][]pend{}}
}

// Add registers an accepted version.
func (t *Tracker) Add(appt string, version int32, at time.Time) {
	t.mu.Lock()
	t.pending[appt] = append(t.pending[appt], pend{version, at})
	t.mu.Unlock()
}

// Take returns the latencies observed so far and how many are still pending, and starts
// over.
func (t *Tracker) Take() ([]time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.pending {
		n += len(p)
	}
	out := t.lat
	t.lat, t.pending = nil, map[string][]pend{}
	return out, n
}

// Pending is how many accepted versions billing has not committed yet.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.pending {
		n += len(p)
	}
	return n
}

// Run polls until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		t.mu.Lock()
		ids := make([]string, 0, len(t.pending))
		for id := range t.pending {
			ids = append(ids, id)
		}
		t.mu.Unlock()
		// A backlog: poll less often, not harder. Each poll reads every pending id, so at a
		// fixed interval the harness's own reads grew with the backlog (at saturation they were
		// the largest statement in pg_stat_statements); 50 µs per pending id bounds them
		// while the poll's resolution stays far below the backlog's own latency.
		interval := t.Interval + time.Duration(len(ids))*50*time.Microsecond
		if len(ids) > 0 {
			t.poll(ctx, ids)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

func (t *Tracker) poll(ctx context.Context, ids []string) {
	rows, err := t.Pool.Query(ctx, `SELECT appointment_id::text, version FROM billing.attendance WHERE appointment_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return
	}
	seen := map[string]int32{}
	for rows.Next() {
		var id string
		var v int32
		if rows.Scan(&id, &v) == nil {
			seen[id] = v
		}
	}
	rows.Close()
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, v := range seen {
		ps := t.pending[id]
		kept := ps[:0]
		for _, p := range ps {
			if p.version <= v {
				t.lat = append(t.lat, now.Sub(p.at))
			} else {
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			delete(t.pending, id)
		} else {
			t.pending[id] = kept
		}
	}
}

// ConsumerState is one durable consumer's counters.
type ConsumerState struct {
	Stream, Name        string
	Acked               uint64 // ack floor, consumer sequence
	Pending, AckPending uint64
}

// Snapshot is the JetStream side of the pipeline at one moment.
type Snapshot struct {
	At        time.Time
	StreamSeq map[string]uint64 // last sequence by stream
	Consumers map[string]ConsumerState
}

// Drained reports whether every consumer has nothing pending nor unacknowledged.
func (s Snapshot) Drained() bool {
	for _, c := range s.Consumers {
		if c.Pending > 0 || c.AckPending > 0 {
			return false
		}
	}
	return true
}

// Stuck names the consumers with messages pending or unacknowledged.
func (s Snapshot) Stuck() []string {
	var out []string
	for k, c := range s.Consumers {
		if c.Pending > 0 || c.AckPending > 0 {
			out = append(out, fmt.Sprintf("%s (%d pending, %d unacknowledged)", k, c.Pending, c.AckPending))
		}
	}
	slices.Sort(out)
	return out
}

// PipelineStreams are the streams whose consumers the harness watches.
var PipelineStreams = []string{"SCHEDULING", "BILLING", "NOTIFICATION"}

// Snap reads the streams' last sequences and their consumers' counters.
func Snap(ctx context.Context, js jetstream.JetStream) (Snapshot, error) {
	s := Snapshot{At: time.Now(), StreamSeq: map[string]uint64{}, Consumers: map[string]ConsumerState{}}
	for _, name := range PipelineStreams {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return s, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return s, err
		}
		s.StreamSeq[name] = info.State.LastSeq
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			s.Consumers[name+"/"+ci.Name] = ConsumerState{Stream: name, Name: ci.Name, Acked: ci.AckFloor.Consumer,
				Pending: ci.NumPending, AckPending: uint64(ci.NumAckPending)}
		}
		if err := l.Err(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Progress follows snapshots after a phase's load until everything is drained (and the
// outboxes are empty, checked by outboxEmpty), recording when each counter last moved.
type Progress struct {
	Start     Snapshot
	last      Snapshot
	lastMoved map[string]time.Time
}

// NewProgress starts from the snapshot at the beginning of a phase.
func NewProgress(start Snapshot) *Progress {
	return &Progress{Start: start, last: start, lastMoved: map[string]time.Time{}}
}

// Observe takes a later snapshot.
func (p *Progress) Observe(s Snapshot) {
	for k, v := range s.StreamSeq {
		if v != p.last.StreamSeq[k] {
			p.lastMoved["stream/"+k] = s.At
		}
	}
	for k, c := range s.Consumers {
		if c.Acked != p.last.Consumers[k].Acked {
			p.lastMoved[k] = s.At
		}
	}
	p.last = s
}

// Hops are the streams' and consumers' counts over the phase, each over the time from the
// start until it last moved; stages that did nothing are left out.
func (p *Progress) Hops() []Hop {
	var hops []Hop
	secs := func(key string) float64 {
		t, ok := p.lastMoved[key]
		if !ok {
			return 0
		}
		return t.Sub(p.Start.At).Seconds()
	}
	for _, name := range PipelineStreams {
		if d := p.last.StreamSeq[name] - p.Start.StreamSeq[name]; d > 0 {
			hops = append(hops, Hop{Name: "published to " + name + " (relay)", Events: int64(d), Seconds: secs("stream/" + name)})
		}
		var keys []string
		for k, c := range p.last.Consumers {
			if c.Stream == name {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			c := p.last.Consumers[k]
			if d := c.Acked - p.Start.Consumers[k].Acked; d > 0 && c.Acked >= p.Start.Consumers[k].Acked {
				hops = append(hops, Hop{Name: "consumed by " + c.Name + " (" + name + ")", Events: int64(d), Seconds: secs(k)})
			}
		}
	}
	return hops
}

// OutboxBacklog counts events not yet published in the given services' outboxes.
func OutboxBacklog(ctx context.Context, pool *pgxpool.Pool, schemas ...string) (int64, error) {
	var total int64
	for _, s := range schemas {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+s+`.outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// LastMoved is when any stream or consumer last moved (the start when nothing did).
func (p *Progress) LastMoved() time.Time {
	t := p.Start.At
	for _, m := range p.lastMoved {
		if m.After(t) {
			t = m
		}
	}
	return t
}
