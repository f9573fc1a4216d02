package auth

// The roles a Trellis token can carry. Each service's rpc.Policy grants procedures to some of
// them; docs/security.md shows the whole role x RPC matrix, generated from those policies and
// checked by each service's authz test.
const (
	RoleAdmin             = "admin"              // every procedure of every service
	RoleOperator          = "operator"           // network and clinic operations: configuration, reports
	RoleIntakeCoordinator = "intake_coordinator" // referrals, consents, coverage, admissions
	RoleClinician         = "clinician"          // assessments, attendance, the patient's care
	RoleScheduler         = "scheduler"          // rooms, tracks, appointments, attendance
	RoleBilling           = "billing"            // accounts, charges, claims, remittances
)

// Roles lists every role, in the order docs/security.md prints them.
var Roles = []string{RoleAdmin, RoleOperator, RoleIntakeCoordinator, RoleClinician, RoleScheduler, RoleBilling}

// RoleComplianceOfficer reads the PHI audit trail (GET /audit on every service, pkg/audit).
// It calls no RPC, so it is not one of Roles (the columns of the role x RPC matrix).
const RoleComplianceOfficer = "compliance_officer"
