package config

import (
	"slices"
	"strings"
	"testing"
)

// TestZonesDocumented pins the zone table to the zones whose SOS endpoint
// Exoscale documents (see the comment on Zones for the sources): a zone
// added or dropped without a source fails here. A zone of the Exoscale API
// without a documented SOS endpoint (hr-zag-1) is refused by name and
// reachable as a plain endpoint and region.
func TestZonesDocumented(t *testing.T) {
	documented := []string{"ch-gva-2", "ch-dk-2", "de-fra-1", "de-muc-1", "at-vie-1", "at-vie-2", "bg-sof-1"}
	if !slices.Equal(Zones, documented) {
		t.Errorf("Zones = %v, want the documented %v (update the sources in the comment on Zones with the table)", Zones, documented)
	}
	for _, z := range Zones {
		if got := ZoneEndpoint(z); got != "https://sos-"+z+".exo.io" {
			t.Errorf("ZoneEndpoint(%s) = %s", z, got)
		}
	}

	_, err := Parse([]byte("upstream: {zone: hr-zag-1, access_key: a, secret_key: b}\n"), "z.yaml", env())
	if err == nil || !strings.Contains(err.Error(), `upstream.zone: unknown zone "hr-zag-1"`) {
		t.Errorf("zone hr-zag-1: %v, want an unknown zone error", err)
	}
	cfg, err := Parse([]byte("upstream: {endpoint: https://sos-hr-zag-1.exo.io, region: hr-zag-1, access_key: a, secret_key: b}\n"), "z.yaml", env())
	if err != nil {
		t.Fatalf("endpoint and region for hr-zag-1: %v", err)
	}
	if cfg.Upstream.Endpoint != "https://sos-hr-zag-1.exo.io" || cfg.Upstream.Region != "hr-zag-1" {
		t.Errorf("upstream = %v", cfg.Upstream)
	}
}
