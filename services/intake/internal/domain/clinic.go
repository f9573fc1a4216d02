package domain

import (
	"fmt"
	"time"
)

// Clinic is a site patients are admitted to. Its IANA time zone decides what "today" means for
// its calendar dates (start dates, session days).
type Clinic struct {
	ID       string
	Name     string
	TimeZone string
	Location *time.Location
}

// NewClinic checks the time zone is a known IANA zone name (not a fixed offset or "Local").
func NewClinic(id, name, timeZone string) (Clinic, error) {
	if timeZone == "" || timeZone == "Local" {
		return Clinic{}, fmt.Errorf("clinic %s: time zone %q is not an IANA zone name", id, timeZone)
	}
	loc, err := time.LoadLocation(timeZone)
	if err != nil {
		return Clinic{}, fmt.Errorf("clinic %s: time zone %q: %w", id, timeZone, err)
	}
	return Clinic{ID: id, Name: name, TimeZone: timeZone, Location: loc}, nil
}
