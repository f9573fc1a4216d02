package app

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	schedulingv1 "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"

	"github.com/trellis-health/trellis/services/scheduling/internal/domain"
)

// EnrollmentProto is the API form of an enrollment.
func EnrollmentProto(e domain.Enrollment) *schedulingv1.Enrollment {
	return &schedulingv1.Enrollment{
		EnrollmentId:           e.ID,
		PatientId:              e.PatientID,
		ClinicId:               e.ClinicID,
		ProgramTrack:           e.ProgramTrack,
		StartDate:              e.StartDate.Format(domain.DateLayout),
		Status:                 e.Status,
		TrackId:                e.TrackID,
		ProgramCode:            e.ProgramCode,
		WaitlistedAt:           timestamp(e.WaitlistedAt),
		EnrolledAt:             timestamp(e.EnrolledAt),
		EndedAt:                timestamp(e.EndedAt),
		ReplacedByEnrollmentId: e.ReplacedBy,
	}
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
