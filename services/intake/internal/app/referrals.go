package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// Subjects of the referral funnel's events (intakev1 ReferralReceived, ReferralStatusChanged,
// AssessmentRecorded, PatientReferredOut).
const (
	SubjectReferralReceived      = "trellis.intake.referral.received.v1"
	SubjectReferralStatusChanged = "trellis.intake.referral.status_changed.v1"
	SubjectAssessmentRecorded    = "trellis.intake.assessment.recorded.v1"
	SubjectPatientReferredOut    = "trellis.intake.patient.referred_out.v1"
)

// Queue page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Viewer is the caller's clinic access (*auth.Principal is one). A record of a clinic the
// caller may not see is answered as not found, so its existence is not revealed.
type Viewer interface {
	CanSeeClinic(clinicID string) bool
}

// CreateReferral is the command to put a first contact or referral in the queue.
type CreateReferral struct {
	Caller         string // token subject
	Sees           Viewer
	IdempotencyKey string
	RequestHash    []byte
	Input          domain.ReferralInput
}

// CreateReferral checks the referral, flags possible duplicates among the open referrals and
// the patients of every clinic (reporting to the caller only those of clinics it may see, on
// a replay too), stores it as "new" and emits ReferralReceived, once per idempotency key.
func (s *Intake) CreateReferral(ctx context.Context, cmd CreateReferral) (*intakev1.CreateReferralResponse, error) {
	var out *intakev1.CreateReferralResponse
	var flagged int
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		resp, replayed, err := idempotency.Once(ctx, tx, s.repo, idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}, &intakev1.CreateReferralResponse{},
			func() (*intakev1.CreateReferralResponse, error) {
				clinic, err := s.repo.Clinic(ctx, tx, cmd.Input.ClinicID)
				if err != nil {
					return nil, err
				}
				r, err := domain.NewReferral(cmd.Input, clinic, s.now(), bus.NewID(), cmd.Caller)
				if err != nil {
					return nil, err
				}
				// Two referrals of one person created at once must see each other: the second
				// waits here until the first has committed, then finds it.
				if err := s.repo.LockMatchKeys(ctx, tx, domain.MatchKeys(r.Person())); err != nil {
					return nil, err
				}
				cands, err := s.repo.DuplicateCandidates(ctx, tx, r.Person())
				if err != nil {
					return nil, err
				}
				dups := domain.FindDuplicates(r.ID, r.Person(), cands)
				created := domain.StatusChange{ID: bus.NewID(), ReferralID: r.ID, ClinicID: r.ClinicID, To: r.Status, By: cmd.Caller, At: r.CreatedAt}
				if err := s.repo.AddReferral(ctx, tx, r, dups, created); err != nil {
					return nil, err
				}
				flagged = len(dups)
				tx.Emit(bus.Event{Subject: SubjectReferralReceived, ClinicID: r.ClinicID, Payload: &intakev1.ReferralReceived{
					ReferralId: r.ID, ClinicId: r.ClinicID, Source: sourceCodes.enum[r.Source],
					FirstContactAt: timestamppb.New(r.FirstContactAt), PreferredTrack: trackCodes.enum[r.PreferredTrack],
					PossibleDuplicate: len(dups) > 0,
				}})
				return &intakev1.CreateReferralResponse{Referral: referralProto(r, dups, cmd.Sees)}, nil
			})
		if err != nil {
			return err
		}
		if replayed {
			if err := s.refilterDuplicates(ctx, tx, resp.GetReferral(), cmd.Sees); err != nil {
				return err
			}
		}
		resp.Replayed = replayed
		out = resp
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out.Replayed {
		s.log.InfoContext(ctx, "referral creation replayed", "referral_id", out.GetReferral().GetReferralId())
	} else {
		s.log.InfoContext(ctx, "referral created", "referral_id", out.GetReferral().GetReferralId(),
			"clinic_id", out.GetReferral().GetClinicId(), "possible_duplicates", flagged)
	}
	return out, nil
}

// GetReferral returns a referral the caller may see, else domain.ErrNotFound.
func (s *Intake) GetReferral(ctx context.Context, sees Viewer, id string) (*intakev1.Referral, error) {
	var out *intakev1.Referral
	err := s.tx.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		r, err := s.visibleReferral(ctx, tx, sees, id, false)
		if err != nil {
			return err
		}
		out, err = s.referralView(ctx, tx, *r, sees)
		return err
	})
	return out, err
}

// ListReferrals is the queue query. Age is whole days since first contact (24-hour days, at the
// time of the first page); 0 means no bound.
type ListReferrals struct {
	Sees       Viewer
	AllClinics bool     // the caller may see every clinic and named none
	ClinicIDs  []string // else: the clinics to list (already checked visible)
	Statuses   []domain.ReferralStatus
	MinAgeDays int
	MaxAgeDays int
	PageSize   int // 0: DefaultPageSize
	PageToken  string
}

// pageToken is the keyset position after a page, with the time the listing started (so age
// bounds do not drift between pages) and a fingerprint of the filters it belongs to.
type pageToken struct {
	AsOf    int64  `json:"o"` // unix microseconds
	AfterAt int64  `json:"t"` // unix microseconds
	AfterID string `json:"i"`
	Filter  string `json:"f"`
}

// ListReferrals lists referrals oldest first contact first, by pages: the response's
// next_page_token (empty on the last page) continues the same listing.
func (s *Intake) ListReferrals(ctx context.Context, q ListReferrals) (*intakev1.ListReferralsResponse, error) {
	var vs []domain.Violation
	if q.MinAgeDays > 0 && q.MaxAgeDays > 0 && q.MinAgeDays > q.MaxAgeDays {
		vs = append(vs, domain.Violation{Field: "max_age_days", Rule: "age.range", Msg: "must not be less than min_age_days"})
	}
	size := q.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	filter := q.fingerprint()
	asOf := s.now().UTC().Truncate(time.Microsecond)
	rq := ReferralQuery{AllClinics: q.AllClinics, ClinicIDs: q.ClinicIDs, Statuses: q.Statuses, Limit: size + 1}
	if q.PageToken != "" {
		tok, ok := decodePageToken(q.PageToken, s.now())
		if !ok || tok.Filter != filter {
			vs = append(vs, domain.Violation{Field: "page_token", Rule: "page_token.valid", Msg: "must be a next_page_token of this listing, with the same filters"})
		} else {
			asOf = time.UnixMicro(tok.AsOf).UTC()
			rq.AfterAt, rq.AfterID = time.UnixMicro(tok.AfterAt).UTC(), tok.AfterID
		}
	}
	if len(vs) > 0 {
		return nil, &domain.ValidationError{Violations: vs}
	}
	if q.MinAgeDays > 0 {
		rq.ContactedBy = asOf.AddDate(0, 0, -q.MinAgeDays)
	}
	if q.MaxAgeDays > 0 {
		rq.ContactedAfter = asOf.AddDate(0, 0, -(q.MaxAgeDays + 1))
	}
	if !q.AllClinics && len(q.ClinicIDs) == 0 {
		return &intakev1.ListReferralsResponse{}, nil
	}

	out := &intakev1.ListReferralsResponse{}
	err := s.tx.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rs, err := s.repo.ListReferrals(ctx, tx, rq)
		if err != nil {
			return err
		}
		more := len(rs) > size
		rs = rs[:min(len(rs), size)]
		ids := make([]string, len(rs))
		for i, r := range rs {
			ids[i] = r.ID
		}
		dups, err := s.repo.Duplicates(ctx, tx, ids)
		if err != nil {
			return err
		}
		for _, r := range rs {
			out.Referrals = append(out.Referrals, referralProto(r, dups[r.ID], q.Sees))
		}
		if more {
			last := rs[len(rs)-1]
			out.NextPageToken = encodePageToken(pageToken{AsOf: asOf.UnixMicro(), AfterAt: last.FirstContactAt.UnixMicro(), AfterID: last.ID, Filter: filter})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (q ListReferrals) fingerprint() string {
	clinics := slices.Sorted(slices.Values(q.ClinicIDs))
	statuses := make([]string, len(q.Statuses))
	for i, st := range q.Statuses {
		statuses[i] = string(st)
	}
	slices.Sort(statuses)
	h := sha256.Sum256(fmt.Appendf(nil, "%t|%s|%s|%d|%d", q.AllClinics, strings.Join(clinics, ","), strings.Join(statuses, ","), q.MinAgeDays, q.MaxAgeDays))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t) // plain struct: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken reads a next_page_token. Tokens are not signed, so anything may come back:
// one is valid only with a UUID keyset id and times between pageTokenEpoch and a day from now
// (a forged one is then invalid_argument, never a query Postgres refuses).
func decodePageToken(s string, now time.Time) (pageToken, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return pageToken{}, false
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil {
		return pageToken{}, false
	}
	id, err := uuid.Parse(t.AfterID)
	if err != nil {
		return pageToken{}, false
	}
	t.AfterID = id.String() // the canonical form (Parse also takes forms Postgres does not)
	lo, hi := pageTokenEpoch.UnixMicro(), now.Add(24*time.Hour).UnixMicro()
	for _, at := range []int64{t.AsOf, t.AfterAt} {
		if at < lo || at > hi {
			return pageToken{}, false
		}
	}
	return t, true
}

// pageTokenEpoch is before any first contact intake has recorded.
var pageTokenEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ChangeReferralStatus is the command to move a referral to contacted, screened or closed.
type ChangeReferralStatus struct {
	Caller     string
	Sees       Viewer
	ReferralID string
	To         domain.ReferralStatus
	Reason     string
}

// ChangeReferralStatus makes a move of the state machine that is not a decision (see
// domain.CheckMove), records it in the referral's history and emits ReferralStatusChanged. An
// illegal move is a *domain.PreconditionError and changes nothing.
func (s *Intake) ChangeReferralStatus(ctx context.Context, cmd ChangeReferralStatus) (*intakev1.Referral, error) {
	var out *intakev1.Referral
	var change domain.StatusChange
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		r, err := s.visibleReferral(ctx, tx, cmd.Sees, cmd.ReferralID, true)
		if err != nil {
			return err
		}
		moved, c, err := r.Move(cmd.To, domain.ViaChangeStatus, cmd.Reason, cmd.Caller, bus.NewID(), s.now())
		if err != nil {
			return err
		}
		if err := s.repo.MoveReferral(ctx, tx, moved, c); err != nil {
			return err
		}
		emitStatusChanged(tx, c)
		change = c
		out, err = s.referralView(ctx, tx, moved, cmd.Sees)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "referral status changed", "referral_id", change.ReferralID, "from", change.From, "to", change.To)
	return out, nil
}

// RecordAssessment is the command to record an ASAM assessment of a screened referral.
type RecordAssessment struct {
	Caller         string
	Sees           Viewer
	IdempotencyKey string
	RequestHash    []byte
	ReferralID     string
	Input          domain.AssessmentInput
}

// RecordAssessment stores the assessment with the rule set's recommendation and any override,
// moves the referral from screened to assessed, and emits AssessmentRecorded and
// ReferralStatusChanged, once per idempotency key.
func (s *Intake) RecordAssessment(ctx context.Context, cmd RecordAssessment) (*intakev1.RecordAssessmentResponse, error) {
	var out *intakev1.RecordAssessmentResponse
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		// Visibility first, so a replay never hands a record to a caller who lost access to it.
		r, err := s.visibleReferral(ctx, tx, cmd.Sees, cmd.ReferralID, true)
		if err != nil {
			return err
		}
		resp, replayed, err := idempotency.Once(ctx, tx, s.repo, idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}, &intakev1.RecordAssessmentResponse{},
			func() (*intakev1.RecordAssessmentResponse, error) {
				a, err := domain.NewAssessment(cmd.Input, *r, s.now(), bus.NewID(), cmd.Caller)
				if err != nil {
					return nil, err
				}
				moved, c, err := r.Move(domain.StatusAssessed, domain.ViaAssessment, "", cmd.Caller, bus.NewID(), a.AssessedAt)
				if err != nil {
					return nil, err
				}
				if err := s.repo.AddAssessment(ctx, tx, a); err != nil {
					return nil, err
				}
				if err := s.repo.MoveReferral(ctx, tx, moved, c); err != nil {
					return nil, err
				}
				tx.Emit(bus.Event{Subject: SubjectAssessmentRecorded, ClinicID: a.ClinicID, Payload: &intakev1.AssessmentRecorded{
					AssessmentId: a.ID, ReferralId: a.ReferralID, ClinicId: a.ClinicID, Edition: a.Edition,
					Population: populationCodes.enum[a.Population], RecommendedLevel: a.RecommendedLevel,
					FinalLevel: a.FinalLevel, Overridden: a.Overridden(), AssessedAt: timestamppb.New(a.AssessedAt),
				}})
				emitStatusChanged(tx, c)
				return &intakev1.RecordAssessmentResponse{Assessment: assessmentProto(a)}, nil
			})
		if err != nil {
			return err
		}
		resp.Replayed = replayed
		out = resp
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "assessment recorded", "assessment_id", out.GetAssessment().GetAssessmentId(),
		"referral_id", cmd.ReferralID, "replayed", out.Replayed)
	return out, nil
}

// ReferOut is the command to decide a referral goes to another level of care or provider.
type ReferOut struct {
	Caller         string
	Sees           Viewer
	IdempotencyKey string
	RequestHash    []byte
	ReferralID     string
	Input          domain.ReferOutInput
}

// ReferOut moves a screened or assessed referral to referred_out with the decision, and emits
// PatientReferredOut and ReferralStatusChanged, once per idempotency key.
func (s *Intake) ReferOut(ctx context.Context, cmd ReferOut) (*intakev1.ReferOutResponse, error) {
	var out *intakev1.ReferOutResponse
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		r, err := s.visibleReferral(ctx, tx, cmd.Sees, cmd.ReferralID, true)
		if err != nil {
			return err
		}
		resp, replayed, err := idempotency.Once(ctx, tx, s.repo, idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}, &intakev1.ReferOutResponse{},
			func() (*intakev1.ReferOutResponse, error) {
				moved, c, d, err := r.ReferOut(cmd.Input, cmd.Caller, bus.NewID(), s.now())
				if err != nil {
					return nil, err
				}
				if err := s.repo.ReferOutReferral(ctx, tx, moved, c, d); err != nil {
					return nil, err
				}
				tx.Emit(bus.Event{Subject: SubjectPatientReferredOut, ClinicID: d.ClinicID, Payload: &intakev1.PatientReferredOut{
					ReferralId: d.ReferralID, ClinicId: d.ClinicID, Level: d.Level, DecidedAt: timestamppb.New(d.At),
				}})
				emitStatusChanged(tx, c)
				view, err := s.referralView(ctx, tx, moved, cmd.Sees)
				if err != nil {
					return nil, err
				}
				return &intakev1.ReferOutResponse{Referral: view}, nil
			})
		if err != nil {
			return err
		}
		if replayed {
			if err := s.refilterDuplicates(ctx, tx, resp.GetReferral(), cmd.Sees); err != nil {
				return err
			}
		}
		resp.Replayed = replayed
		out = resp
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "referral referred out", "referral_id", cmd.ReferralID, "replayed", out.Replayed)
	return out, nil
}

// visibleReferral loads a referral the caller may see, else domain.ErrNotFound.
func (s *Intake) visibleReferral(ctx context.Context, tx pgx.Tx, sees Viewer, id string, forUpdate bool) (*domain.Referral, error) {
	r, err := s.repo.Referral(ctx, tx, id, forUpdate)
	if err != nil {
		return nil, err
	}
	if r == nil || !sees.CanSeeClinic(r.ClinicID) {
		return nil, domain.ErrNotFound
	}
	return r, nil
}

// referralView is r as the API shows it to the caller, with its possible duplicates.
func (s *Intake) referralView(ctx context.Context, tx pgx.Tx, r domain.Referral, sees Viewer) (*intakev1.Referral, error) {
	dups, err := s.repo.Duplicates(ctx, tx, []string{r.ID})
	if err != nil {
		return nil, err
	}
	return referralProto(r, dups[r.ID], sees), nil
}

// refilterDuplicates keeps, of the possible duplicates in a replayed response, only those of
// clinics the caller may see now: the stored response was filtered for the caller as they were
// at the first call, and their token may name fewer clinics since. A duplicate whose clinic
// cannot be found is dropped.
func (s *Intake) refilterDuplicates(ctx context.Context, tx pgx.Tx, ref *intakev1.Referral, sees Viewer) error {
	if len(ref.GetPossibleDuplicates()) == 0 {
		return nil
	}
	dups, err := s.repo.Duplicates(ctx, tx, []string{ref.GetReferralId()})
	if err != nil {
		return err
	}
	clinic := map[[2]string]string{}
	for _, d := range dups[ref.GetReferralId()] {
		clinic[[2]string{d.Kind, d.ID}] = d.ClinicID
	}
	var kept []*intakev1.PossibleDuplicate
	for _, d := range ref.GetPossibleDuplicates() {
		if c, ok := clinic[[2]string{d.GetKind(), d.GetId()}]; ok && sees.CanSeeClinic(c) {
			kept = append(kept, d)
		}
	}
	ref.PossibleDuplicates = kept
	return nil
}

func emitStatusChanged(tx *bus.Tx, c domain.StatusChange) {
	tx.Emit(bus.Event{Subject: SubjectReferralStatusChanged, ClinicID: c.ClinicID, Payload: &intakev1.ReferralStatusChanged{
		ReferralId: c.ReferralID, ClinicId: c.ClinicID, From: statusEnum(c.From), To: statusEnum(c.To), ChangedAt: timestamppb.New(c.At),
	}})
}
