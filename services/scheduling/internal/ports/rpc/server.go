// Package rpc serves SchedulingService over Connect.
package rpc

import (
	"log/slog"

	"github.com/trellis-health/trellis/pkg/rpc"
	"github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1/schedulingv1connect"

	"github.com/trellis-health/trellis/services/scheduling/internal/app"
)

// Server implements schedulingv1connect.SchedulingServiceHandler. Authentication, the role
// policy and request validation run before it (pkg/rpc interceptors).
// Each feature adds its methods in its own file; a procedure without one answers unimplemented.
type Server struct {
	schedulingv1connect.UnimplementedSchedulingServiceHandler
	app *app.App
	log *slog.Logger
}

// Roles that call scheduling.
const (
	RoleScheduler         = "scheduler"
	RoleClinician         = "clinician"
	RoleOperator          = "operator"
	RoleIntakeCoordinator = "intake_coordinator"
	RoleAdmin             = "admin"
)

// Policy: the roles allowed to call each procedure (anything missing is refused). Clinic
// access is checked in each handler against the record it touches.
var Policy = rpc.Policy{
	schedulingv1connect.SchedulingServiceUpsertClinicProcedure:          {RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceListClinicsProcedure:           {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertRoomProcedure:            {RoleOperator, RoleScheduler, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertClinicianProcedure:       {RoleOperator, RoleScheduler, RoleAdmin},
	schedulingv1connect.SchedulingServiceListCliniciansProcedure:        {RoleScheduler, RoleClinician, RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertProgramProcedure:         {RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceListProgramsProcedure:          {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceUpsertTrackProcedure:           {RoleOperator, RoleScheduler, RoleAdmin},
	schedulingv1connect.SchedulingServiceListTracksProcedure:            {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceGetEnrollmentProcedure:         {RoleScheduler, RoleClinician, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceListWaitlistProcedure:          {RoleScheduler, RoleClinician, RoleOperator, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceSwitchTrackProcedure:           {RoleScheduler, RoleAdmin},
	schedulingv1connect.SchedulingServiceListPatientScheduleProcedure:   {RoleScheduler, RoleClinician, RoleIntakeCoordinator, RoleAdmin},
	schedulingv1connect.SchedulingServiceListClinicDayProcedure:         {RoleScheduler, RoleClinician, RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceRescheduleAppointmentProcedure: {RoleScheduler, RoleClinician, RoleAdmin},
	schedulingv1connect.SchedulingServiceCancelAppointmentProcedure:     {RoleScheduler, RoleClinician, RoleAdmin},
	schedulingv1connect.SchedulingServiceGetSessionRosterProcedure:      {RoleScheduler, RoleClinician, RoleOperator, RoleAdmin},
	schedulingv1connect.SchedulingServiceRecordAttendanceProcedure:      {RoleScheduler, RoleClinician, RoleAdmin},
	schedulingv1connect.SchedulingServiceRecordGroupAttendanceProcedure: {RoleScheduler, RoleClinician, RoleAdmin},
	schedulingv1connect.SchedulingServiceGetPatientComplianceProcedure:  {RoleScheduler, RoleClinician, RoleOperator, RoleAdmin},
}

// NewServer returns the handler implementation.
func NewServer(a *app.App, log *slog.Logger) *Server { return &Server{app: a, log: log} }
