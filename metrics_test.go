package keyquorum_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// metricValue returns the value of the series of metric name whose labels
// include want: a counter's or gauge's value, a histogram's sample count.
// ok is false when no such series exists.
func metricValue(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) (v float64, ok bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				v += m.Counter.GetValue()
			case m.Gauge != nil:
				v += m.Gauge.GetValue()
			case m.Histogram != nil:
				v += float64(m.Histogram.GetSampleCount())
			}
			ok = true
		}
	}
	return v, ok
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, w := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == w {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// wantMetric returns a function that fails the test unless the series
// exists and check accepts its value.
func wantMetric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) func(what string, check func(float64) bool) {
	t.Helper()
	v, ok := metricValue(t, g, name, labels)
	return func(what string, check func(float64) bool) {
		t.Helper()
		if !ok {
			t.Errorf("no series %s%v", name, labels)
			return
		}
		if !check(v) {
			t.Errorf("%s%v = %v, want %s", name, labels, v, what)
		}
	}
}

func eq(want float64) (string, func(float64) bool) {
	return fmt.Sprintf("exactly %v", want), func(v float64) bool { return v == want }
}

func atLeast(want float64) (string, func(float64) bool) {
	return fmt.Sprintf("at least %v", want), func(v float64) bool { return v >= want }
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestMetrics_ThreeSites runs three sites with metrics through keygen,
// GG18 and GG20 signing and refusals, and checks that the counters,
// histograms and scrape-time gauges moved with the right labels, and that
// readiness follows the peers.
func TestMetrics_ThreeSites(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen between three sites takes tens of seconds")
	}
	sites := newSites(t, 3)
	regs := make([]*prometheus.Registry, len(sites))
	for i, s := range sites {
		regs[i] = prometheus.NewRegistry()
		s.cfg.Metrics = regs[i]
	}
	a, b, c := sites[0], sites[1], sites[2]
	ra, rb := regs[0], regs[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Alone, a is not ready when two peers are asked for, and names why.
	a.start(t)
	rd, err := a.node.Readiness(ctx, keyquorum.ReadinessConfig{MinPeers: 2, MinPreParams: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rd.Ready || !slices.Equal(rd.Failing(), []string{keyquorum.ReadyPeers, keyquorum.ReadyPreParams}) {
		t.Fatalf("readiness of a lone site: %+v, want peers and preparams failing", rd)
	}
	// A second Node cannot register the same collectors in a's registry.
	if _, err := keyquorum.Open(ctx, a.cfg); !errors.Is(err, keyquorum.ErrInvalidConfig) {
		t.Fatalf("second Node on one registry: %v, want ErrInvalidConfig", err)
	}
	b.start(t)
	c.start(t)

	key, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b, c), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	rd, err = a.node.Readiness(ctx, keyquorum.ReadinessConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !rd.Ready {
		t.Fatalf("readiness after keygen with every site up: %+v", rd)
	}
	ab := ids(a, b)
	digest := sha256.Sum256([]byte("metrics gg18"))
	if _, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
		SignOptions: keyquorum.SignOptions{Signers: ab, Protocol: keyquorum.ProtocolGG18}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: ab, Count: 1}); err != nil {
		t.Fatal(err)
	}
	online := sha256.Sum256([]byte("metrics gg20"))
	if _, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: online,
		SignOptions: keyquorum.SignOptions{Signers: ab, Protocol: keyquorum.ProtocolGG20}}); err != nil {
		t.Fatal(err)
	}
	// This site refuses its own request: the digest is not the intent's.
	in, err := policy.NewRawDigestIntent(hd.Path{}, sha256.Sum256([]byte("the intent")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ab, Intent: in}})
	if !errors.Is(err, keyquorum.ErrDigestNotInIntent) {
		t.Fatalf("sign a digest the intent does not ask for: %v, want ErrDigestNotInIntent", err)
	}
	keyquorum.ProbePeers(a.node)

	// Events on the initiator.
	wantMetric(t, ra, "keyquorum_sessions_total", lbl("op", "keygen", "role", "initiator", "outcome", "ok"))(eq(1))
	wantMetric(t, ra, "keyquorum_sessions_total", lbl("op", "sign", "role", "initiator", "outcome", "ok"))(eq(1))
	wantMetric(t, ra, "keyquorum_sessions_total", lbl("op", "online", "role", "initiator", "outcome", "ok"))(eq(1))
	wantMetric(t, ra, "keyquorum_session_duration_seconds", lbl("op", "sign", "role", "initiator"))(eq(1))
	for _, r := range []string{"1", "2", "3", "4", "5", "6"} {
		wantMetric(t, ra, "keyquorum_round_duration_seconds", lbl("op", "presign", "round", r))(atLeast(1))
	}
	wantMetric(t, ra, "keyquorum_round_duration_seconds", lbl("op", "sign"))(atLeast(5)) // GG18: 9 message rounds
	wantMetric(t, ra, "keyquorum_operations_total", lbl("kind", "sign", "outcome", "ok"))(eq(2))
	wantMetric(t, ra, "keyquorum_operations_total", lbl("kind", "sign", "outcome", "error"))(eq(1))
	wantMetric(t, ra, "keyquorum_operation_duration_seconds", lbl("kind", "keygen"))(eq(1))
	wantMetric(t, ra, "keyquorum_refusals_total", lbl("reason", "digest_not_in_intent", "proposer", "self"))(eq(1))
	wantMetric(t, ra, "keyquorum_hsm_operations_total", lbl("op", string(hsmshare.OpUnseal), "outcome", "ok"))(atLeast(1))
	wantMetric(t, ra, "keyquorum_hsm_operations_total", lbl("op", string(hsmshare.OpSeal), "outcome", "ok"))(atLeast(1))
	wantMetric(t, ra, "keyquorum_hsm_operations_total", lbl("op", string(hsmshare.OpLedgerMark), "outcome", "ok"))(atLeast(1))
	wantMetric(t, ra, "keyquorum_hsm_operation_duration_seconds", lbl("op", string(hsmshare.OpUnseal)))(atLeast(1))
	wantMetric(t, ra, "keyquorum_messages_total", lbl("direction", "sent", "peer", string(b.id)))(atLeast(1))
	wantMetric(t, ra, "keyquorum_messages_total", lbl("direction", "received", "peer", string(b.id)))(atLeast(1))
	wantMetric(t, ra, "keyquorum_message_bytes_total", lbl("direction", "sent", "peer", string(b.id)))(atLeast(1000))
	wantMetric(t, ra, "keyquorum_peer_rtt_seconds", lbl("peer", string(b.id)))("above 0", func(v float64) bool { return v > 0 })
	// Events on a participant.
	wantMetric(t, rb, "keyquorum_sessions_total", lbl("op", "keygen", "role", "participant", "outcome", "ok"))(eq(1))
	wantMetric(t, rb, "keyquorum_sessions_total", lbl("op", "sign", "role", "participant", "outcome", "ok"))(eq(1))
	wantMetric(t, rb, "keyquorum_sessions_total", lbl("op", "online", "role", "participant", "outcome", "ok"))(eq(1))
	wantMetric(t, rb, "keyquorum_round_duration_seconds", lbl("op", "keygen", "round", "1"))(eq(1))
	// Both signers paused pre-parameter generation for the GG18 and the
	// GG20 signature (a presigning session apart, so two pauses each).
	wantMetric(t, ra, "keyquorum_preparams_pauses_total", nil)(atLeast(2))
	wantMetric(t, rb, "keyquorum_preparams_pauses_total", nil)(atLeast(2))
	if _, ok := metricValue(t, rb, "keyquorum_operations_total", nil); ok {
		t.Error("a site that started no operation counts operations")
	}

	// Scrape-time state.
	path := "m"
	wantMetric(t, ra, "keyquorum_site_info", lbl("peer_id", string(a.id)))(eq(1))
	wantMetric(t, ra, "keyquorum_engine_up", nil)(eq(1))
	wantMetric(t, ra, "keyquorum_peer_connected", lbl("peer", string(b.id)))(eq(1))
	wantMetric(t, ra, "keyquorum_keys", nil)(eq(1))
	wantMetric(t, ra, "keyquorum_key_threshold", lbl("key", key.ID))(eq(2))
	pool := lbl("key", key.ID, "path", path)
	for state, v := range map[string]float64{"ready": 0, "reserved": 0, "making": 0} {
		wantMetric(t, ra, "keyquorum_presignatures", merge(pool, lbl("state", state)))(eq(v))
	}
	for event, v := range map[string]float64{"made": 1, "used": 1, "burned": 0, "discarded": 0} {
		wantMetric(t, ra, "keyquorum_presignatures_events_total", merge(pool, lbl("event", event)))(eq(v))
	}
	wantMetric(t, ra, "keyquorum_preparams", lbl("state", "ready"))(eq(0))
	wantMetric(t, ra, "keyquorum_audit_entries", nil)(atLeast(5))
	wantMetric(t, ra, "keyquorum_audit_healthy", nil)(eq(1))
	wantMetric(t, ra, "keyquorum_audit_alerts", nil)(eq(0))
	wantMetric(t, ra, "keyquorum_sessions_running", lbl("op", "sign"))(eq(0))
	wantMetric(t, ra, "keyquorum_status_error", nil)(eq(0))

	// A compromised a proposes a digest its intent does not ask for: b
	// refuses, and counts it by reason.
	eng := keyquorum.CompromisedEngine(a.node)
	other := sha256.Sum256([]byte("not the intent"))
	_, err = eng.Sign(ctx, tss.SignRequest{KeyID: key.ID, Digest: other[:], Signers: ab, Evidence: keyquorum.SignEvidence(in.Bytes(), nil, nil)})
	var refused *tss.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("unauthorized proposal: %v, want a refusal", err)
	}
	wantMetric(t, rb, "keyquorum_refusals_total", lbl("reason", "digest_not_in_intent", "proposer", "peer"))(eq(1))
	wantMetric(t, ra, "keyquorum_sessions_total", lbl("op", "sign", "role", "initiator", "outcome", "refused"))(eq(1))

	checkLabels(t, []prometheus.Gatherer{ra, rb}, key.ID, ids(a, b, c))
	checkDocumented(t, []prometheus.Gatherer{ra, rb})

	// Close unregisters the collectors.
	a.stop(t)
	if mfs, err := ra.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("registry after Close: %d metric families (%v), want none", len(mfs), err)
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// checkLabels checks every label of every keyquorum_ series: only the
// documented label names, committee peers and the key, and otherwise
// short words, so that no digest, intent hash, session ID or address can
// be in a label.
func checkLabels(t *testing.T, gs []prometheus.Gatherer, keyID string, committee []tss.PartyID) {
	t.Helper()
	word := regexp.MustCompile(`^[a-z0-9_-]{1,24}$`)
	members := map[string]bool{"other": true}
	for _, p := range committee {
		members[string(p)] = true
	}
	for _, g := range gs {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "keyquorum_") {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					v := l.GetValue()
					ok := false
					switch l.GetName() {
					case "peer", "peer_id", "initiator":
						ok = members[v]
					case "key":
						ok = v == keyID
					case "signers":
						ok = true
						for _, p := range strings.Split(v, ",") {
							ok = ok && members[p] && p != "other"
						}
					case "path":
						ok = v == "m"
					case "op", "role", "outcome", "round", "kind", "reason", "proposer", "direction", "state", "event":
						ok = word.MatchString(v)
					}
					if !ok {
						t.Errorf("%s: label %s=%q is not one the metrics may carry", mf.GetName(), l.GetName(), v)
					}
				}
			}
		}
	}
}

// checkDocumented checks that the README's metric tables and the Grafana
// dashboard name exactly the metrics a site exports.
func checkDocumented(t *testing.T, gs []prometheus.Gatherer) {
	t.Helper()
	exported := map[string]bool{}
	for _, g := range gs {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "keyquorum_") {
				exported[mf.GetName()] = true
			}
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(keyquorum_[a-z_]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
	}
	for name := range exported {
		if !documented[name] {
			t.Errorf("%s is exported but not in the README's metric tables", name)
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("the README documents %s, which no site exported", name)
		}
	}
	raw, err := os.ReadFile("examples/grafana/keyquorum.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("examples/grafana/keyquorum.json: %v", err)
	}
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(`keyquorum_[a-z_]+`).FindAllString(tg.Expr, -1) {
				used++
				if base, ok := strings.CutSuffix(name, "_bucket"); ok {
					name = base
				}
				if !exported[name] {
					t.Errorf("dashboard panel %q queries %s, which no site exports", p.Title, name)
				}
			}
		}
	}
	if used == 0 {
		t.Error("the dashboard queries no keyquorum metric")
	}
}

// TestReadiness_NamesFailingConditions checks readiness against a site
// whose store directory disappears and whose token is logged out
// underneath it, and a closed site.
func TestReadiness_NamesFailingConditions(t *testing.T) {
	tok := takeToken(t)
	cfg := siteConfig(t, tok)
	cfg.Offline = true
	ctx := context.Background()
	node, err := keyquorum.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	failing := func(want ...string) {
		t.Helper()
		rd, err := node.Readiness(ctx, keyquorum.ReadinessConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if rd.Ready != (len(want) == 0) || !slices.Equal(rd.Failing(), want) {
			t.Fatalf("readiness %+v: failing %v, want %v", rd, rd.Failing(), want)
		}
	}
	failing(keyquorum.ReadyEngine) // offline: no engine
	if _, err := node.Readiness(ctx, keyquorum.ReadinessConfig{MinPeers: -1}); !errors.Is(err, keyquorum.ErrInvalidConfig) {
		t.Fatalf("negative threshold: %v, want ErrInvalidConfig", err)
	}

	moved := cfg.StoreDir + ".moved"
	if err := os.Rename(cfg.StoreDir, moved); err != nil {
		t.Fatal(err)
	}
	failing(keyquorum.ReadyStore, keyquorum.ReadyEngine)
	if err := os.Rename(moved, cfg.StoreDir); err != nil {
		t.Fatal(err)
	}
	failing(keyquorum.ReadyEngine)

	// Log the application out of the token, as a token reset would: the
	// module is the one the node loaded, so the login is the node's.
	p := pkcs11.New(tokenDir.Module)
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var sh pkcs11.SessionHandle
	found := false
	for _, s := range slots {
		info, err := p.GetTokenInfo(s)
		if err == nil && strings.TrimRight(info.Label, " ") == tok.Label {
			if sh, err = p.OpenSession(s, pkcs11.CKF_SERIAL_SESSION); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("token %q not found", tok.Label)
	}
	if err := p.Logout(sh); err != nil {
		t.Fatal(err)
	}
	p.CloseSession(sh)
	failing(keyquorum.ReadyHSM, keyquorum.ReadyEngine)

	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Readiness(ctx, keyquorum.ReadinessConfig{}); !errors.Is(err, keyquorum.ErrClosed) {
		t.Fatalf("readiness of a closed node: %v, want ErrClosed", err)
	}
}
