package rlstest

import (
	"net/url"
	"testing"
)

// SystemURL adds the session scope to the options a URL already has, spaces as %20.
func TestSystemURL(t *testing.T) {
	got := SystemURL(t, "postgres://u:p@h:5432/db?sslmode=disable&options=-c%20idle_in_transaction_session_timeout%3D15000")
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if o := u.Query().Get("options"); o != "-c idle_in_transaction_session_timeout=15000 -c trellis.clinics=*" {
		t.Errorf("options %q", o)
	}
	if u.Query().Get("sslmode") != "disable" || u.User.Username() != "u" {
		t.Errorf("lost the rest of the URL: %s", got)
	}
	if got := SystemURL(t, "postgres://h/db"); got != "postgres://h/db?options=-c%20trellis.clinics%3D%2A" {
		t.Errorf("without options: %s", got)
	}
}
