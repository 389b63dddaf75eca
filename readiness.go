package keyquorum

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ReadinessConfig sets the thresholds of [Node.Readiness]. The zero value
// asks for a working token, store, engine and audit log and for M−1
// reachable peers.
type ReadinessConfig struct {
	// MinPeers is how many other committee members must be reachable. 0
	// means M−1, for the largest threshold M of the keys this site holds
	// (0 when it holds none): enough co-signers to sign with every key.
	// Negative is invalid.
	MinPeers int
	// MinPreParams is how many Paillier pre-parameter sets must be ready
	// (for keygen and resharing). Default 0: not checked.
	MinPreParams int
	// MinPresignatures is how many ready GG20 presignatures every
	// presignature pool this site knows must hold. Default 0: not checked.
	MinPresignatures int
}

// Readiness conditions, as named in [ReadinessCheck].Name.
const (
	// ReadyHSM: the token's sessions are still logged in
	// (hsmshare.Token.Check).
	ReadyHSM = "hsm"
	// ReadyStore: the store's directory and records can be read.
	ReadyStore = "store"
	// ReadyEngine: the protocol engine runs (not offline, not stopped).
	ReadyEngine = "engine"
	// ReadyAudit: the audit log takes entries, or is disabled.
	ReadyAudit = "audit"
	// ReadyPeers: enough other committee members are reachable
	// (ReadinessConfig.MinPeers).
	ReadyPeers = "peers"
	// ReadyPreParams: enough pre-parameter sets are ready
	// (ReadinessConfig.MinPreParams); checked only when asked for.
	ReadyPreParams = "preparams"
	// ReadyPresignatures: every pool holds enough ready presignatures
	// (ReadinessConfig.MinPresignatures); checked only when asked for.
	ReadyPresignatures = "presignatures"
)

// Readiness says whether a site can serve requests now, and which of its
// conditions fail. It holds nothing secret.
type Readiness struct {
	// Ready is true when every check passed.
	Ready bool `json:"ready"`
	// Checks are the conditions in a fixed order: hsm, store, engine,
	// audit, peers, preparams, presignatures (the last two only when
	// asked for).
	Checks []ReadinessCheck `json:"checks"`
}

// ReadinessCheck is one condition of [Readiness].
type ReadinessCheck struct {
	// Name names the condition (ReadyHSM, ReadyPeers, ...).
	Name string `json:"name"`
	// OK reports whether it holds.
	OK bool `json:"ok"`
	// Detail says what was found, and for a failed check what is wrong.
	Detail string `json:"detail"`
}

// Failing returns the names of the checks that failed.
func (r *Readiness) Failing() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// Readiness checks whether the site can serve requests now: its token is
// still logged in (a PKCS#11 call), its store directory can be read, its
// protocol engine runs, its audit log takes entries, enough other
// committee members are reachable (connected now, or the last message to
// them was delivered), and the pre-parameters and presignature pools are
// at the thresholds cfg asks for. It does not contact other sites. An
// error means the checks could not run (a closed node, an invalid cfg).
func (n *Node) Readiness(ctx context.Context, cfg ReadinessConfig) (*Readiness, error) {
	if cfg.MinPeers < 0 || cfg.MinPreParams < 0 || cfg.MinPresignatures < 0 {
		return nil, fmt.Errorf("%w: readiness thresholds must not be negative", ErrInvalidConfig)
	}
	st, err := n.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: readiness: %w", err)
	}
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	r := &Readiness{Ready: true}
	add := func(name string, err error, ok string) {
		c := ReadinessCheck{Name: name, OK: err == nil, Detail: ok}
		if err != nil {
			c.Detail = err.Error()
			r.Ready = false
		}
		r.Checks = append(r.Checks, c)
	}

	add(ReadyHSM, n.token.Check(ctx), fmt.Sprintf("token %q logged in", n.token.Label()))
	add(ReadyStore, n.checkStore(ctx), "store "+n.store.Dir()+" readable")
	var engErr error
	switch {
	case st.Offline:
		engErr = ErrOffline
	case st.EngineError != "":
		engErr = fmt.Errorf("protocol engine stopped: %s; restart the site", st.EngineError)
	}
	add(ReadyEngine, engErr, "protocol engine running")
	var auditErr error
	auditOK := "audit log disabled"
	if st.Audit != nil {
		auditOK = fmt.Sprintf("audit log takes entries (%d)", st.Audit.Entries)
		if st.Audit.Error != "" {
			auditErr = fmt.Errorf("audit log cannot record, the site refuses to sign: %s", st.Audit.Error)
		}
	}
	add(ReadyAudit, auditErr, auditOK)

	want, why := cfg.MinPeers, "asked for"
	if want == 0 {
		for _, k := range st.Keys {
			want = max(want, k.Threshold-1)
		}
		why = "M−1 of the key with the largest M"
	}
	reachable := 0
	var down []string
	for _, p := range st.Peers {
		if p.Connected || (p.Reachable != nil && *p.Reachable) {
			reachable++
		} else {
			down = append(down, string(p.PeerID))
		}
	}
	var peersErr error
	if reachable < want {
		peersErr = fmt.Errorf("%d of %d other committee members reachable, %d needed (%s); not reachable: %v; check that those sites run and that the peer file's addresses reach them",
			reachable, len(st.Peers), want, why, down)
	}
	add(ReadyPeers, peersErr, fmt.Sprintf("%d of %d other committee members reachable, %d needed (%s)", reachable, len(st.Peers), want, why))

	if cfg.MinPreParams > 0 {
		var err error
		if st.PreParams.Ready < cfg.MinPreParams {
			err = fmt.Errorf("%d pre-parameter sets ready, %d needed; wait for generation (%d running) or import some (kqnode preparams import)",
				st.PreParams.Ready, cfg.MinPreParams, st.PreParams.Generating)
		}
		add(ReadyPreParams, err, fmt.Sprintf("%d pre-parameter sets ready, %d needed", st.PreParams.Ready, cfg.MinPreParams))
	}
	if cfg.MinPresignatures > 0 {
		var low []string
		pools := 0
		for _, k := range st.Keys {
			for _, p := range k.Pools {
				pools++
				if p.Error != "" || p.Ready < cfg.MinPresignatures {
					low = append(low, fmt.Sprintf("key %s signers %s path %s: %d ready", k.KeyID, parties(p.Signers), p.Path, p.Ready))
				}
			}
		}
		var err error
		if len(low) > 0 {
			err = fmt.Errorf("presignature pools below %d ready: %v; wait for the refill (Config.PoolTarget) or presign (kqnode presign)", cfg.MinPresignatures, low)
		}
		add(ReadyPresignatures, err, fmt.Sprintf("%d pools with at least %d ready presignatures", pools, cfg.MinPresignatures))
	}
	return r, nil
}

// checkStore reads the store's directory and one of its record lists.
func (n *Node) checkStore(ctx context.Context) error {
	fi, err := os.Stat(n.store.Dir())
	if err == nil && !fi.IsDir() {
		err = errors.New("not a directory")
	}
	if err == nil {
		_, err = n.store.List(ctx, kindNode)
	}
	if err != nil {
		return fmt.Errorf("store %s cannot be read: %w", n.store.Dir(), err)
	}
	return nil
}
