// Package app holds scheduling's use cases: enrolling admitted patients and reading enrollments.
package app

import (
	"context"

	"github.com/trellis-health/trellis/pkg/bus"
	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// SubjectEnrollmentCreated is the subject of EnrollmentCreated.
const SubjectEnrollmentCreated = "trellis.scheduling.enrollment.created.v1"

// Enrollments stores enrollments (implemented by adapters/postgres).
type Enrollments interface {
	// Add inserts e in tx unless an enrollment from the same source event or for the same
	// admission (patient, clinic, track, start date) exists; it reports whether it inserted.
	Add(ctx context.Context, tx *bus.Tx, e domain.Enrollment) (bool, error)
	// ForPatient returns all of a patient's enrollments, in any clinic.
	ForPatient(ctx context.Context, patientID string) ([]domain.Enrollment, error)
}

// App is scheduling's application layer.
type App struct {
	enrollments Enrollments
	newID       func() string
}

// New returns the app over its repository.
func New(enrollments Enrollments) *App {
	return &App{enrollments: enrollments, newID: bus.NewID}
}

// EnrollAdmitted creates the enrollment for an admission, in tx, and emits EnrollmentCreated
// there (the outbox). An admission seen before (same source event, or the same facts under
// another event id) changes nothing and emits nothing: created is false. Invalid input
// returns an error wrapping domain.ErrInvalid.
func (a *App) EnrollAdmitted(ctx context.Context, tx *bus.Tx, sourceEventID string, adm domain.Admission) (e domain.Enrollment, created bool, err error) {
	e, err = domain.NewEnrollment(a.newID(), sourceEventID, adm)
	if err != nil {
		return e, false, err
	}
	created, err = a.enrollments.Add(ctx, tx, e)
	if err != nil || !created {
		return e, false, err
	}
	tx.Emit(bus.Event{
		Subject:  SubjectEnrollmentCreated,
		ClinicID: e.ClinicID,
		Payload: &schedulingv1.EnrollmentCreated{
			EnrollmentId: e.ID,
			PatientId:    e.PatientID,
			ClinicId:     e.ClinicID,
			ProgramTrack: e.ProgramTrack,
			StartDate:    e.StartDate.Format(domain.DateLayout),
		},
	})
	return e, true, nil
}

// GetEnrollment returns the patient's current enrollment as viewer may see it, or
// domain.ErrNotFound (also when it exists only in clinics viewer cannot see).
func (a *App) GetEnrollment(ctx context.Context, viewer domain.Viewer, patientID string) (domain.Enrollment, error) {
	all, err := a.enrollments.ForPatient(ctx, patientID)
	if err != nil {
		return domain.Enrollment{}, err
	}
	e, ok := domain.Current(viewer, all)
	if !ok {
		return domain.Enrollment{}, domain.ErrNotFound
	}
	return e, nil
}
