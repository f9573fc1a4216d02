// Package demo lists the demo clinics that `intake seed-demo` upserts. Their ids are fixed so
// that the dev stack, end-to-end tests and other services' tests can refer to them.
package demo

// Demo clinic ids.
const (
	RiversideClinicID   = "0190a000-0000-7000-8000-000000000001"
	LakeviewClinicID    = "0190a000-0000-7000-8000-000000000002"
	DesertBloomClinicID = "0190a000-0000-7000-8000-000000000003"
)

// Clinic is a demo clinic.
type Clinic struct {
	ID       string
	Name     string
	TimeZone string // IANA
}

// Clinics are the demo clinics, in three different time zones (Phoenix keeps no daylight
// saving time, which catches code that assumes a fixed offset between clinics).
var Clinics = []Clinic{
	{ID: RiversideClinicID, Name: "Riverside Health Center", TimeZone: "America/Chicago"},
	{ID: LakeviewClinicID, Name: "Lakeview Clinic", TimeZone: "America/New_York"},
	{ID: DesertBloomClinicID, Name: "Desert Bloom", TimeZone: "America/Phoenix"},
}
