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
	Scheduled int32 // minutes
	step      int   // index in cycle of the current value
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
		SELECT a.id::text, (extract(epoch FROM s.ends_at - s.starts_at) / 60)::int, coalesce(c.status, '')
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
		if err := rows.Scan(&a.ID, &a.Scheduled, &status); err != nil {
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

// Driver records attendance through scheduling's API.
type Driver struct {
	Client  schedulingv1connect.SchedulingServiceClient
	Appts   []*Appointment
	Tracker *Tracker
	RunID   string // scopes idempotency keys

	next     atomic.Int64
	seq      atomic.Int64
	accepted atomic.Int64
	errs     atomic.Int64
	busy     atomic.Int64
	lastErr  atomic.Value
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
	step := (a.step + 1) % len(cycle)
	e := &schedulingv1.AttendanceEntry{AppointmentId: a.ID, Status: cycle[step]}
	if cycle[step] == schedulingv1.AttendanceStatus_ATTENDANCE_STATUS_LATE {
		e.MinutesAttended = a.Scheduled / 2
	}
	resp, err := d.Client.RecordAttendance(ctx, connect.NewRequest(&schedulingv1.RecordAttendanceRequest{
		Entry: e, IdempotencyKey: fmt.Sprintf("bench-%s-%d", d.RunID, d.seq.Add(1))}))
	if err != nil {
		if ctx.Err() == nil {
			d.errs.Add(1)
			d.lastErr.Store(err.Error())
		}
		return
	}
	accepted := time.Now()
	a.step = step
	d.accepted.Add(1)
	if d.Tracker != nil {
		d.Tracker.Add(a.ID, resp.Msg.GetAttendance().GetVersion(), accepted)
	}
}

// LastError is the last API error, if any.
func (d *Driver) LastError() string {
	s, _ := d.lastErr.Load().(string)
	return s
}

// Fixed offers rate calls per second for dur with at most workers in flight; a call that
// finds every worker (or every appointment) busy is skipped (counted), not queued, so the
// offered load stays open.
func (d *Driver) Fixed(ctx context.Context, rate float64, workers int, dur time.Duration) (accepted, errs, skipped int64) {
	a0, e0, b0 := d.accepted.Load(), d.errs.Load(), d.busy.Load()
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	began := time.Now()
	var issued int64
	for ctx.Err() == nil {
		el := time.Since(began)
		if el >= dur {
			break
		}
		due := int64(el.Seconds() * rate)
		for ; issued < due; issued++ {
			select {
			case sem <- struct{}{}:
				wg.Go(func() { defer func() { <-sem }(); d.one(ctx) })
			default:
				skipped++
			}
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	return d.accepted.Load() - a0, d.errs.Load() - e0, skipped + d.busy.Load() - b0
}

// Saturate runs workers callers back to back for dur.
func (d *Driver) Saturate(ctx context.Context, workers int, dur time.Duration) (accepted, errs int64) {
	a0, e0 := d.accepted.Load(), d.errs.Load()
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				d.one(ctx)
			}
		})
	}
	wg.Wait()
	return d.accepted.Load() - a0, d.errs.Load() - e0
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
		interval := t.Interval
		if len(ids) > 500 { // a backlog: poll less often, not harder
			interval *= 5
		}
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
