package bench

// Method is the fixed part of docs/benchmarks.md: how the figures above were made.
const Method = `## How the harness measures

` + "`make bench`" + ` first runs the Go benchmarks of the hot paths (` + "`pkg/bus`" + `: outbox write, relay,
inbox, each beside its raw baseline; billing's 835 parsing and posting, write-offs), saving their
output, then the harness (` + "`deploy/bench`" + `, a module of its own beside ` + "`deploy/devstack`" + `, whose stack
and demo network it reuses):

1. **Up.** ` + "`stack.Up`" + ` builds the five services and runs them as in production (migrate, serve,
   their own roles and schemas) against a fresh database ` + "`trellis_bench`" + ` on the local Postgres and an
   embedded NATS server with JetStream file storage in ` + "`.run/bench`" + `, on free ports (so it never
   collides with ` + "`make run`" + `). Service logs go to ` + "`.run/bench/stack.log`" + `.
2. **Baselines**, with the same number of workers as the pipeline's API callers
   (` + "`BENCH_WORKERS`" + `, default 16): raw ` + "`BEGIN; INSERT; COMMIT`" + ` of one outbox-shaped row through pgx
   (the durability settings are printed above), raw JetStream publishes with acks (asynchronous,
   up to 256 in flight per worker, message ids as the relay sends them) and fetch-and-ack of them
   from a durable pull consumer in batches of 32.
3. **Network.** ` + "`demonet.Generate`" + ` makes the demo network through the services' APIs (referrals,
   admissions, schedules, weeks of attendance, claims, 835s, billing work).
4. **Pipeline.** Attendance on every appointment whose session has started, cycling present,
   late (half the session) and absent: each value differs from the current one, so each is a
   correction and one ` + "`AttendanceRecorded`" + ` event (scheduling's rules); it recomputes billing's
   patient-day (new charges, voids), the dashboard's projections, and, for absences,
   notification's check-ins. Two modes. **One correction per call**: one ` + "`RecordAttendance`" + `
   call per appointment, so one event per API call and per scheduling transaction (session lock,
   idempotency record, outbox row, compliance check): the worst case, and the mode of the
   unsuffixed keys (` + "`pipeline_events_per_s`" + `, ` + "`e2e_p99_ms_at_500`" + `, ...). **A session per call**:
   one ` + "`RecordGroupAttendance`" + ` call per session with every place's next value (every entry or none,
   one event per place, one transaction for all), which is how clinic staff record a group
   session's attendance; its keys end in ` + "`_sessions`" + `. Scheduling takes any started session, group
   or individual, with entries that are its scheduled places (at most 100 a call): the harness
   groups the same appointments by session (read-only from scheduling's tables), so an individual
   visit is a call of one entry. Both are reported because the first bounds what the pipeline
   does when every event costs a call, and the second is the load clinics actually send. Five
   phases: a light open-loop load (20 events/s, one correction per call, well below what the
   machine sustains: the latency floor), the issue's open-loop 500 events/s in each mode (for
   sessions, offered as 500 / mean places a session calls per second, so the calls carry 500
   events/s; a call that finds every worker, appointment or session busy is skipped and counted,
   not queued), then saturation in each mode (workers calling back to back; a session has at
   most one call in flight, so at most half as many workers as sessions); each phase starts
   once the previous one has drained. Where Postgres time goes and the CPU profiles (below)
   are taken over the saturation one correction per call. The harness watches the JetStream streams and every durable
   consumer (acknowledged deliveries) and the outboxes until everything is drained; a hop's
   rate is what it handled over the time from the start of the phase to its last progress, and
   end to end is the accepted events over the time until the last hop caught up. Latency is from
   the API's answer to the moment billing's copy of that attendance version is visible (billing
   writes the copy and the charges in one transaction), polled every 5 ms (plus 50 µs per
   version still pending, so that the harness's reads do not grow with a backlog) read-only from
   billing's schema (a measuring tool may read another service's tables; a service never does).
   Each phase also records the CPU time each service process, the harness (load generator and
   embedded NATS), all of Postgres's processes and the whole machine used until it drained
   (` + "`/proc`" + `), per attendance event: where the time goes when there is no profiler.
   **Where Postgres time goes.** When the server preloads ` + "`pg_stat_statements`" + `
   (` + "`shared_preload_libraries`" + `), the harness creates the extension in its database, resets it as
   the saturation phase (one correction per call) begins and, once the phase has drained, reads
   the 25 statements of its database with the largest total execution time and the totals of
   each role (each service logs
   in as its own role): statements, commits (` + "`COMMIT`" + ` calls) and execution milliseconds per
   attendance event accepted in the phase. Execution time includes lock waits, not planning or
   round trips. Creating, resetting and reading every role's statements need a privileged role:
   ` + "`BENCH_PG_STATS_URL`" + ` names one (e.g. ` + "`host=/var/run/postgresql user=postgres`" + `; its database
   is replaced by the harness's), else the harness's own role is tried; without the extension
   (CI) the section says why and the rest of the run is unchanged. **CPU profiles**: every
   service runs with ` + "`PPROF_ADDR`" + ` on a free loopback port, and during the saturation load the
   harness takes a CPU profile of each into ` + "`.run/bench/pprof/<service>.cpu.pb.gz`" + `
   (` + "`go tool pprof -top .run/bench/bin/<service> <file>`" + `).
5. **Read side.** The dashboard's overview, billing and health pages and their JSON, with an
   admin session for every clinic, and billing's work queues (` + "`ListWorkItems`" + `), sequentially,
   over the data of the run; then (default scale) the dashboard at the issue's scale, 100 clinics
   and a year: ` + "`services/dashboard`" + `'s ` + "`TestOverviewAtScale`" + ` fills its read model with SQL
   and times each endpoint (its ` + "`SCALE_RESULT`" + ` lines). ` + "`dashboard_p95_ms`" + ` is the largest p95 at
   that scale when it ran (` + "`dashboard_p95_over`" + ` says which), the run's own network otherwise.
6. **Memory.** Peak resident set (` + "`VmHWM`" + ` of ` + "`/proc/<pid>/status`" + `) of each service process
   over the whole run.
7. **Output.** This page, ` + "`.run/bench/report.md`" + ` and ` + "`.run/bench/summary.json`" + `; the last line on
   stdout is the summary JSON. ` + "`-before <summary.json>`" + ` shows an earlier run beside this one.

` + "`BENCH_SCALE=small`" + ` (the generator's small network widened to 20 people a clinic, 7 s phases) is the quick check and finishes
in under 4 minutes with the Go benchmarks; the default is the demo network (the generator's default
network: 5 clinics, 150 people, 8 weeks), 30 s phases and, for the read side, the dashboard's own 100-clinic fill.

## Going bigger

- ` + "`BENCH_CLINICS=<1..99>`" + `, ` + "`BENCH_PATIENTS=<people a clinic>`" + `, ` + "`BENCH_WEEKS=<1..12>`" + `,
  ` + "`BENCH_SECONDS=<per phase>`" + `, ` + "`BENCH_WORKERS=<callers>`" + ` size the run (the generator configures
  numbered clinics beyond the seeded ones). A year of history is not reachable through the APIs:
  intake back-dates an admission at most 90 days, so 12 weeks is the most; each correction is an
  event, so the phases can run as long as one likes on any network. Generating is the slow part
  (about a minute for the default network on the shared 2-core machine; it grows with people x
  weeks).
- For the read side at 100 clinics and a year, ` + "`DASHBOARD_SCALE=1 go test -run TestOverviewAtScale -v ./services/dashboard/cmd/dashboard/`" + `
  fills the dashboard's read model with SQL and logs the endpoints' times (` + "`BENCH_DASHBOARD_SCALE=0|1`" + `
  turns it off or on in the harness).
- A year of 100 clinics through the pipeline needs either a longer back-dating window for a
  benchmark build of intake or a replay of generated events into JetStream; both are outside the
  harness.
`
