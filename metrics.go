package keyquorum

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
)

// Metrics: a Node given a prometheus.Registerer (Config.Metrics) registers
// two kinds of collectors there. Events are counted where they happen:
// sessions and their rounds (tss.Observer), the Node's operations,
// refusals, token operations (hsmshare.Config.Observe), protocol messages
// and bytes per peer. Everything else is read at scrape time from the
// state Status reports (pools, pre-parameters, peers, audit log), so the
// numbers never disagree with `kqnode status`. Labels are bounded: an
// operation, an outcome, a reason, a committee peer, a key and its pools;
// never a digest, a session ID or an address.

// metricsNamespace prefixes every metric name.
const metricsNamespace = "keyquorum"

// pingProtocol is the transport protocol of the round-trip probe: the
// answer is the request, at most pingSize bytes.
const (
	pingProtocol = protocol.ID("/keyquorum/ping/1.0.0")
	pingSize     = 8
)

// Round-trip probes of connected peers, when metrics are on.
const (
	peerRTTInterval = 15 * time.Second
	peerRTTTimeout  = 5 * time.Second
	// scrapeTimeout bounds the Status call of one scrape.
	scrapeTimeout = 10 * time.Second
)

// Histogram buckets, in seconds. Sessions span a GG20 online signature
// (about a millisecond on a LAN) to keygen (seconds to minutes with
// pre-parameter generation); token operations are sub-millisecond on a
// local token and tens of milliseconds on a network HSM.
var (
	sessionBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	hsmBuckets     = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// metrics holds the event metrics of a Node; nil when Config.Metrics is.
type metrics struct {
	sessions      *prometheus.CounterVec
	sessionSecs   *prometheus.HistogramVec
	roundSecs     *prometheus.HistogramVec
	operations    *prometheus.CounterVec
	operationSecs *prometheus.HistogramVec
	refusals      *prometheus.CounterVec
	hsmOps        *prometheus.CounterVec
	hsmSecs       *prometheus.HistogramVec
	messages      *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	rtt           *prometheus.GaugeVec
	committee     map[tss.PartyID]bool // peers that may appear in a label
}

func newMetrics(peers map[tss.PartyID]bool) *metrics {
	name := func(n string) string { return metricsNamespace + "_" + n }
	return &metrics{
		committee: peers,
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("sessions_total"),
			Help: "Protocol sessions this site took part in, by operation, role (initiator, participant) and outcome."},
			[]string{"op", "role", "outcome"}),
		sessionSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("session_duration_seconds"),
			Help: "How long protocol sessions ran on this site, by operation and role.", Buckets: sessionBuckets},
			[]string{"op", "role"}),
		roundSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("round_duration_seconds"),
			Help: "Time this site spent in each protocol round of successful rounds, by operation and round number.", Buckets: sessionBuckets},
			[]string{"op", "round"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("operations_total"),
			Help: "Operations started on this site through its API (keygen, presign, sign, sign-psbt, sign-eth), by kind and outcome."},
			[]string{"kind", "outcome"}),
		operationSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("operation_duration_seconds"),
			Help: "How long operations started on this site took, by kind.", Buckets: sessionBuckets},
			[]string{"kind"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("refusals_total"),
			Help: "Requests this site refused, by reason and by proposer (self: a request made here; peer: a session another site proposed)."},
			[]string{"reason", "proposer"}),
		hsmOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("hsm_operations_total"),
			Help: "PKCS#11 token operations, by operation and outcome (ok, error)."},
			[]string{"op", "outcome"}),
		hsmSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("hsm_operation_duration_seconds"),
			Help: "Duration of PKCS#11 token operations, waiting for a free session included, by operation.", Buckets: hsmBuckets},
			[]string{"op"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("messages_total"),
			Help: "Protocol messages sent to and received from committee peers, by direction (sent, received) and peer."},
			[]string{"direction", "peer"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("message_bytes_total"),
			Help: "Payload bytes of the protocol messages sent to and received from committee peers, by direction and peer."},
			[]string{"direction", "peer"}),
		rtt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name("peer_rtt_seconds"),
			Help: "Round-trip time of the latest probe of each committee peer, measured every 15 s (absent when the latest probe failed)."},
			[]string{"peer"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sessions, m.sessionSecs, m.roundSecs, m.operations, m.operationSecs, m.refusals,
		m.hsmOps, m.hsmSecs, m.messages, m.bytes, m.rtt}
}

// peerLabel is the label of a peer: its party ID when it is a committee
// member, "other" otherwise, so that no one outside the committee can add
// series.
func (m *metrics) peerLabel(p tss.PartyID) string {
	if m.committee[p] {
		return string(p)
	}
	return "other"
}

// role names a session role in labels.
func role(initiator bool) string {
	if initiator {
		return "initiator"
	}
	return "participant"
}

// Outcomes of sessions and operations, in labels.
const (
	outcomeOK          = "ok"
	outcomeTimeout     = "timeout"
	outcomeRefused     = "refused"
	outcomeCulprit     = "culprit"
	outcomeAborted     = "aborted"
	outcomeUnreachable = "unreachable"
	outcomeCanceled    = "canceled"
	outcomeBusy        = "busy"
	outcomeError       = "error"
)

// outcome classifies a session's or an operation's error for a label.
func outcome(err error) string {
	var (
		timeout     *tss.RoundTimeoutError
		refused     *tss.RefusedError
		culprit     *tss.CulpritError
		aborted     *tss.AbortedError
		unreachable *tss.UnreachableError
	)
	switch {
	case err == nil:
		return outcomeOK
	case errors.As(err, &culprit):
		return outcomeCulprit
	case errors.As(err, &timeout):
		return outcomeTimeout
	case errors.As(err, &refused):
		return outcomeRefused
	case errors.As(err, &aborted):
		return outcomeAborted
	case errors.As(err, &unreachable):
		return outcomeUnreachable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outcomeCanceled
	case errors.Is(err, tss.ErrBusy):
		return outcomeBusy
	}
	return outcomeError
}

// refusalReason classifies why this site refused a request, for a label.
// The signing-policy reasons come first: the engine wraps every refusal
// of the Policy hook in tss.ErrPolicy, the site's signing policy included.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, ErrAudit):
		return "audit"
	case errors.Is(err, ErrNoSigningPolicy):
		return "no_policy"
	case errors.Is(err, ErrDigestNotInIntent):
		return "digest_not_in_intent"
	case errors.Is(err, policy.ErrApproval):
		return "approval"
	case errors.Is(err, policy.ErrRefused):
		return "policy"
	case errors.Is(err, policy.ErrIntent), errors.Is(err, policy.ErrIntentTooLarge), errors.Is(err, policy.ErrNothingToSign):
		return "intent"
	case errors.Is(err, ErrNoIntent):
		return "intent"
	case errors.Is(err, tss.ErrBusy):
		return "busy"
	case errors.Is(err, tss.ErrNotInCommittee):
		return "not_in_committee"
	case errors.Is(err, tss.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, tss.ErrPresignatureUsed):
		return "presignature_used"
	case errors.Is(err, tss.ErrNotYourPresignature):
		return "not_your_presignature"
	case errors.Is(err, tss.ErrNoPresignature):
		return "no_presignature"
	case errors.Is(err, tss.ErrEngineClosed):
		return "closing"
	case errors.Is(err, tss.ErrPolicy):
		return "policy_hook"
	case errors.Is(err, tss.ErrBadRequest), errors.Is(err, tss.ErrMalformedMessage):
		return "bad_request"
	}
	return "other"
}

// SessionEnded implements tss.Observer.
func (m *metrics) SessionEnded(op tss.Operation, initiator bool, d time.Duration, err error) {
	r := role(initiator)
	m.sessions.WithLabelValues(string(op), r, outcome(err)).Inc()
	m.sessionSecs.WithLabelValues(string(op), r).Observe(d.Seconds())
}

// RoundDone implements tss.Observer.
func (m *metrics) RoundDone(op tss.Operation, round uint32, d time.Duration) {
	m.roundSecs.WithLabelValues(string(op), strconv.FormatUint(uint64(round), 10)).Observe(d.Seconds())
}

// Refused implements tss.Observer.
func (m *metrics) Refused(from tss.PartyID, reason error) {
	m.refusals.WithLabelValues(refusalReason(reason), "peer").Inc()
}

// refusedHere counts a request made on this site that its own checks
// refused.
func (m *metrics) refusedHere(err error) {
	if m != nil {
		m.refusals.WithLabelValues(refusalReason(err), "self").Inc()
	}
}

// operationEnded counts an operation started through the Node's API.
func (m *metrics) operationEnded(kind string, d time.Duration, err error) {
	m.operations.WithLabelValues(kind, outcome(err)).Inc()
	m.operationSecs.WithLabelValues(kind).Observe(d.Seconds())
}

// observeOperations has ops report every operation that ends.
func (m *metrics) observeOperations(ops *operations) { ops.ended = m.operationEnded }

// hsmObserved counts a token operation (hsmshare.Config.Observe).
func (m *metrics) hsmObserved(op hsmshare.Op, d time.Duration, err error) {
	o := outcomeOK
	if err != nil {
		o = outcomeError
	}
	m.hsmOps.WithLabelValues(string(op), o).Inc()
	m.hsmSecs.WithLabelValues(string(op)).Observe(d.Seconds())
}

// sent counts a message of size bytes delivered to peer p; received one
// from p.
func (m *metrics) sent(p tss.PartyID, size int) {
	if m != nil {
		l := m.peerLabel(p)
		m.messages.WithLabelValues("sent", l).Inc()
		m.bytes.WithLabelValues("sent", l).Add(float64(size))
	}
}

func (m *metrics) received(p tss.PartyID, size int) {
	if m != nil {
		l := m.peerLabel(p)
		m.messages.WithLabelValues("received", l).Inc()
		m.bytes.WithLabelValues("received", l).Add(float64(size))
	}
}

// registerMetrics registers the Node's collectors with cfg.Metrics. It
// runs before the token is opened, so that token operations are counted
// from the first.
func (n *Node) registerMetrics() error {
	reg := n.cfg.Metrics
	if reg == nil {
		return nil
	}
	m := newMetrics(n.members())
	cs := append(m.collectors(), &statusCollector{n: n})
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, r := range cs[:i] {
				reg.Unregister(r)
			}
			return fmt.Errorf("%w: Metrics: register the node's collectors: %w (each Node needs its own registry, or a prometheus.WrapRegistererWith label that tells them apart)", ErrInvalidConfig, err)
		}
	}
	n.metrics = m
	n.unregister = func() {
		for _, c := range cs {
			reg.Unregister(c)
		}
	}
	return nil
}

// servePing answers a round-trip probe with its request.
func (n *Node) servePing(ctx context.Context, from tss.PartyID, req []byte) ([]byte, error) {
	if len(req) > pingSize {
		return nil, fmt.Errorf("ping of %d bytes, at most %d", len(req), pingSize)
	}
	return req, nil
}

// probePeers measures the round-trip time to every other committee member
// every peerRTTInterval until ctx ends. A probe dials a member that is not
// connected, so a site with metrics keeps connections to the members that
// are up, and Readiness sees them.
func (n *Node) probePeers(ctx context.Context) {
	t := time.NewTicker(peerRTTInterval)
	defer t.Stop()
	for {
		n.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) probeOnce(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range n.cfg.Peers {
		id := p.PartyID()
		if id == n.party {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := n.probe(ctx, id)
			if err != nil {
				n.metrics.rtt.DeleteLabelValues(string(id))
				return
			}
			n.metrics.rtt.WithLabelValues(string(id)).Set(d.Seconds())
		}()
	}
	wg.Wait()
}

// probe sends a round-trip probe to committee peer id, dialing it when it
// is not connected, and returns the round-trip time.
func (n *Node) probe(ctx context.Context, id tss.PartyID) (time.Duration, error) {
	var req [pingSize]byte
	if _, err := rand.Read(req[:]); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, peerRTTTimeout)
	defer cancel()
	start := time.Now()
	resp, err := n.net.Request(ctx, id, pingProtocol, req[:])
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if string(resp) != string(req[:]) {
		return 0, fmt.Errorf("keyquorum: %s answered the round-trip probe with other bytes", id)
	}
	return d, nil
}

// statusCollector reports, at scrape time, the state Status describes.
type statusCollector struct{ n *Node }

// Descriptions of the scrape-time metrics.
var (
	descSiteInfo = prometheus.NewDesc("keyquorum_site_info",
		"Always 1; the label names this site's peer ID.", []string{"peer_id"}, nil)
	descEngineUp = prometheus.NewDesc("keyquorum_engine_up",
		"1 while the protocol engine runs, 0 after it stopped on an error or on an offline node.", nil, nil)
	descPeerConnected = prometheus.NewDesc("keyquorum_peer_connected",
		"1 when a connection to the committee peer is up now, else 0.", []string{"peer"}, nil)
	descPeerReachable = prometheus.NewDesc("keyquorum_peer_reachable",
		"1 when the last message to the committee peer was delivered, 0 when the transport gave up on it; absent before the first.", []string{"peer"}, nil)
	descPeersConnected = prometheus.NewDesc("keyquorum_peers_connected",
		"Committee peers with a connection up now.", nil, nil)
	descPeers = prometheus.NewDesc("keyquorum_peers",
		"Other members of the committee in the peer file.", nil, nil)
	descKeys = prometheus.NewDesc("keyquorum_keys",
		"Keys this site holds a share of.", nil, nil)
	descKeyThreshold = prometheus.NewDesc("keyquorum_key_threshold",
		"M of the key: how many sites must sign.", []string{"key"}, nil)
	descKeySignersUp = prometheus.NewDesc("keyquorum_key_signers_up",
		"Committee members of the key this site can sign with now: itself and the connected ones.", []string{"key"}, nil)
	descPresigs = prometheus.NewDesc("keyquorum_presignatures",
		"GG20 presignatures of a pool on this site (its initiator alone spends them), by state: ready, reserved (by online signing in flight), making (presigning now).",
		[]string{"key", "signers", "path", "initiator", "state"}, nil)
	descPresigEvents = prometheus.NewDesc("keyquorum_presignatures_events_total",
		"Presignatures of a pool since the node opened, by event: made, used (burned included), burned (used by an online signing this site initiated that failed), discarded (by reconciliation).",
		[]string{"key", "signers", "path", "initiator", "event"}, nil)
	descPreParams = prometheus.NewDesc("keyquorum_preparams",
		"Paillier pre-parameter sets, by state: ready, generating.", []string{"state"}, nil)
	descPreParamsTarget = prometheus.NewDesc("keyquorum_preparams_target",
		"How many pre-parameter sets background generation keeps ready (0 when it is off).", nil, nil)
	descPreParamsGenerated = prometheus.NewDesc("keyquorum_preparams_generated_total",
		"Pre-parameter sets generated since the node opened.", nil, nil)
	descPreParamsPauses = prometheus.NewDesc("keyquorum_preparams_pauses_total",
		"Pauses of pre-parameter generation for signing since the node opened.", nil, nil)
	descSessionsRunning = prometheus.NewDesc("keyquorum_sessions_running",
		"Protocol sessions running on this site now, by operation.", []string{"op"}, nil)
	descAuditEntries = prometheus.NewDesc("keyquorum_audit_entries",
		"Entries in this site's audit log.", nil, nil)
	descAuditCheckpoint = prometheus.NewDesc("keyquorum_audit_checkpoint_entries",
		"Entries the newest signed checkpoint of the audit log covers.", nil, nil)
	descAuditCosigners = prometheus.NewDesc("keyquorum_audit_checkpoint_cosigners",
		"Witnesses (other sites) that cosigned the newest checkpoint.", nil, nil)
	descAuditHealthy = prometheus.NewDesc("keyquorum_audit_healthy",
		"1 when the audit log takes entries, 0 when it cannot (the site then refuses to sign).", nil, nil)
	descAuditAlerts = prometheus.NewDesc("keyquorum_audit_alerts",
		"Rewrites of other sites' audit logs this site caught as their witness; any value above 0 needs the operators.", nil, nil)
	descNetDropped = prometheus.NewDesc("keyquorum_network_dropped_total",
		"Received envelopes the transport dropped, by reason.", []string{"reason"}, nil)
	descNetEvents = prometheus.NewDesc("keyquorum_network_events_total",
		"Transport events: streams_refused, connections_refused, dial_failures, reconnects, panics.", []string{"event"}, nil)
	descEngineDropped = prometheus.NewDesc("keyquorum_engine_dropped_total",
		"Protocol messages the engine dropped, by reason.", []string{"reason"}, nil)
	descScrapeError = prometheus.NewDesc("keyquorum_status_error",
		"1 when the site's status could not be read for this scrape (the other scrape-time metrics are then missing).", nil, nil)
)

var statusDescs = []*prometheus.Desc{descSiteInfo, descEngineUp, descPeerConnected, descPeerReachable, descPeersConnected,
	descPeers, descKeys, descKeyThreshold, descKeySignersUp, descPresigs, descPresigEvents, descPreParams, descPreParamsTarget,
	descPreParamsGenerated, descPreParamsPauses, descSessionsRunning, descAuditEntries, descAuditCheckpoint, descAuditCosigners, descAuditHealthy,
	descAuditAlerts, descNetDropped, descNetEvents, descEngineDropped, descScrapeError}

// Describe implements prometheus.Collector.
func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range statusDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.n.Status(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descScrapeError, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(descScrapeError, prometheus.GaugeValue, 0)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descSiteInfo, 1, string(st.PeerID))
	gauge(descEngineUp, b2f(!st.Offline && st.EngineError == ""))
	gauge(descPeers, float64(len(st.Peers)))
	gauge(descPeersConnected, float64(st.PeersConnected))
	for _, p := range st.Peers {
		gauge(descPeerConnected, b2f(p.Connected), string(p.PeerID))
		if p.Reachable != nil {
			gauge(descPeerReachable, b2f(*p.Reachable), string(p.PeerID))
		}
	}
	gauge(descKeys, float64(len(st.Keys)))
	for _, k := range st.Keys {
		gauge(descKeyThreshold, float64(k.Threshold), k.KeyID)
		gauge(descKeySignersUp, float64(len(k.SignersUp)), k.KeyID)
		for _, p := range k.Pools {
			if p.Error != "" {
				continue
			}
			l := []string{k.KeyID, parties(p.Signers), p.Path, string(p.Initiator)}
			gauge(descPresigs, float64(p.Ready), append(l, "ready")...)
			gauge(descPresigs, float64(p.Reserved), append(l, "reserved")...)
			gauge(descPresigs, float64(p.Making), append(l, "making")...)
			counter(descPresigEvents, p.Made, append(l, "made")...)
			counter(descPresigEvents, p.Used, append(l, "used")...)
			counter(descPresigEvents, p.Burned, append(l, "burned")...)
			counter(descPresigEvents, p.Discarded, append(l, "discarded")...)
		}
	}
	gauge(descPreParams, float64(st.PreParams.Ready), "ready")
	gauge(descPreParams, float64(st.PreParams.Generating), "generating")
	gauge(descPreParamsTarget, float64(st.PreParams.Target))
	counter(descPreParamsGenerated, uint64(st.PreParams.Generated))
	counter(descPreParamsPauses, uint64(st.PreParams.Pauses))
	running := map[tss.Operation]int{}
	for _, op := range []tss.Operation{tss.OpKeygen, tss.OpSign, tss.OpPresign, tss.OpOnline, tss.OpReshare, tss.OpReconcile} {
		running[op] = 0
	}
	for _, s := range st.Sessions {
		running[s.Op]++
	}
	for op, v := range running {
		gauge(descSessionsRunning, float64(v), string(op))
	}
	if st.Audit != nil {
		gauge(descAuditEntries, float64(st.Audit.Entries))
		gauge(descAuditCheckpoint, float64(st.Audit.Checkpoint))
		gauge(descAuditCosigners, float64(len(st.Audit.CosignedBy)))
		gauge(descAuditHealthy, b2f(st.Audit.Error == ""))
	}
	gauge(descAuditAlerts, float64(len(st.AuditAlerts)))
	if nw := st.Network; nw != nil {
		for reason, v := range nw.Dropped {
			counter(descNetDropped, v, reason)
		}
		counter(descNetEvents, nw.StreamsRefused, "streams_refused")
		counter(descNetEvents, nw.ConnectionsRefused, "connections_refused")
		counter(descNetEvents, nw.DialFailures, "dial_failures")
		counter(descNetEvents, nw.Reconnects, "reconnects")
		counter(descNetEvents, nw.Panics, "panics")
	}
	if e := st.Engine; e != nil {
		for reason, v := range map[string]uint64{
			"unknown_session": e.UnknownSession, "finished_session": e.FinishedSession, "not_party": e.NotParty,
			"duplicate": e.Duplicate, "replay": e.Replay, "malformed": e.Malformed, "unexpected": e.Unexpected,
			"overflow": e.Overflow, "over_quota": e.OverQuota, "refusals_dropped": e.RefusalsDropped,
		} {
			counter(descEngineDropped, v, reason)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
