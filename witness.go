package keyquorum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/tss"
)

// Witnessing: after each audit checkpoint a site asks every other site of
// the committee to cosign it. The other site checks the checkpoint's
// signature with the key the connection authenticated, checks with a
// consistency proof that the tree extends the last one it cosigned for
// that site (kept sealed in its store), and answers with a cosignature
// (C2SP tlog-cosignature form, audit/FORMAT.md). A site that truncated or
// rewrote its log, even re-signed with its own HSM, is caught at the next
// exchange: the witness refuses, raises an alert (log, status, its own
// audit log) and keeps both signed checkpoints as evidence.

// witnessProtocol is the transport protocol of cosigning requests.
const witnessProtocol = protocol.ID("/keyquorum/audit-witness/1.0.0")

// Store records of the witness: the last checkpoint cosigned per origin,
// and the evidence of rewrites.
const (
	kindWitness  = "witness"
	kindEvidence = "witness-evidence"
)

// auditRewrite is the audit entry a witness writes when it catches a
// rewrite.
const auditRewrite = "audit.rewrite"

// WitnessName is the cosigner name of the site with party ID party.
func WitnessName(party tss.PartyID) string { return "keyquorum/" + string(party) + "/witness" }

// witnessStore keeps a witness's last-seen checkpoints sealed in the
// site's store.
type witnessStore struct{ n *Node }

func witnessID(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:16])
}

func (s witnessStore) LastSeen(ctx context.Context, origin string) ([]byte, error) {
	b, _, err := s.n.store.Get(ctx, kindWitness, witnessID(origin))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (s witnessStore) SetLastSeen(ctx context.Context, origin string, checkpoint []byte) error {
	return s.n.store.Put(ctx, kindWitness, witnessID(origin), 1, checkpoint)
}

// witnessing is a site's witness side: per-origin locks and alerts.
type witnessing struct {
	mu     sync.Mutex
	locks  map[tss.PartyID]*sync.Mutex
	alerts []string
}

func (w *witnessing) lock(p tss.PartyID) *sync.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.locks == nil {
		w.locks = map[tss.PartyID]*sync.Mutex{}
	}
	if w.locks[p] == nil {
		w.locks[p] = &sync.Mutex{}
	}
	return w.locks[p]
}

func (w *witnessing) alert(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.alerts) < 100 {
		w.alerts = append(w.alerts, msg)
	}
}

// AuditAlerts returns the rewrites of other sites' audit logs this site
// caught as their witness, newest last.
func (n *Node) AuditAlerts() []string {
	n.witness.mu.Lock()
	defer n.witness.mu.Unlock()
	return append([]string(nil), n.witness.alerts...)
}

// Witness answers: "ok\n" then signature lines, "conflict SIZE",
// "rewrite " then the RewriteError's JSON, or "error MESSAGE".

// serveWitness answers a cosigning request from another site.
func (n *Node) serveWitness(ctx context.Context, from tss.PartyID, raw []byte) ([]byte, error) {
	req, err := audit.ParseCosignRequest(raw)
	if err != nil {
		return []byte("error " + err.Error()), nil
	}
	origin := AuditOrigin(from)
	pub, err := n.net.PeerPublicKey(from)
	if err != nil {
		return []byte("error " + err.Error()), nil
	}
	lv, err := audit.NewVerifier(origin, pub)
	if err != nil {
		return []byte("error " + err.Error()), nil
	}
	m := n.witness.lock(from)
	m.Lock()
	defer m.Unlock()
	w, err := audit.NewWitness(audit.WitnessConfig{Name: WitnessName(n.party), Signer: n.identity,
		Logs: []note.Verifier{lv}, Store: witnessStore{n}})
	if err != nil {
		return []byte("error " + err.Error()), nil
	}
	sigs, err := w.Cosign(ctx, req)
	var conflict *audit.ConflictError
	var rewrite *audit.RewriteError
	switch {
	case err == nil:
		return append([]byte("ok\n"), sigs...), nil
	case errors.As(err, &conflict):
		return []byte("conflict " + strconv.FormatUint(conflict.Size, 10)), nil
	case errors.As(err, &rewrite):
		n.caught(from, rewrite)
		ev, _ := json.Marshal(rewrite)
		return append([]byte("rewrite "), ev...), nil
	}
	return []byte("error " + err.Error()), nil
}

// caught keeps the evidence of a rewrite by from and raises the alert.
func (n *Node) caught(from tss.PartyID, rw *audit.RewriteError) {
	ev, _ := json.Marshal(rw)
	sum := sha256.Sum256(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.store.Put(ctx, kindEvidence, hex.EncodeToString(sum[:16]), 1, ev); err != nil {
		n.log.Error("audit: could not keep the evidence of a rewrite", "site", string(from), "err", err.Error())
	}
	msg := fmt.Sprintf("%s at %s (evidence %x in the store)", rw.Error(), time.Now().UTC().Format(time.RFC3339), sum[:8])
	n.witness.alert(msg)
	n.log.Error("AUDIT ALERT: another site rewrote its audit log", "site", string(from), "kind", rw.Kind, "err", rw.Error())
	n.recordQuiet(auditRewrite, map[string]string{"site": string(from), "kind": rw.Kind, "evidence": hex.EncodeToString(sum[:16])})
}

// askWitness returns the WitnessFunc that sends a request to peer p.
func (n *Node) askWitness(p tss.PartyID) audit.WitnessFunc {
	return func(ctx context.Context, req *audit.CosignRequest) ([]byte, error) {
		resp, err := n.net.Request(ctx, p, witnessProtocol, req.Marshal())
		if err != nil {
			return nil, err
		}
		kind, rest, _ := strings.Cut(string(resp), " ")
		if strings.HasPrefix(string(resp), "ok\n") {
			return resp[3:], nil
		}
		switch kind {
		case "conflict":
			size, err := strconv.ParseUint(rest, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("witness %s: bad conflict answer", p)
			}
			return nil, &audit.ConflictError{Origin: AuditOrigin(n.party), Size: size}
		case "rewrite":
			var rw audit.RewriteError
			if err := json.Unmarshal([]byte(rest), &rw); err != nil {
				return nil, fmt.Errorf("witness %s: bad rewrite answer", p)
			}
			return nil, &rw
		case "error":
			return nil, fmt.Errorf("witness %s refused: %s", p, rest)
		}
		return nil, fmt.Errorf("witness %s: unexpected answer", p)
	}
}

// cosign has every other site of the committee cosign cp, the log's newest
// checkpoint; it returns the checkpoint with the cosignatures it got and
// the witnesses' errors.
func (n *Node) cosign(ctx context.Context, cp *audit.Checkpoint) (*audit.Checkpoint, error) {
	var errs []error
	out := cp
	for _, peer := range n.cfg.Peers {
		p := peer.PartyID()
		if p == n.party {
			continue
		}
		if err := n.net.Reach(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		pub, err := n.net.PeerPublicKey(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		wv, err := audit.NewCosignatureVerifier(WitnessName(p), pub)
		if err == nil {
			err = n.audit.AddWitness(wv)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c, err := n.audit.RequestCosignature(ctx, cp, WitnessName(p), n.askWitness(p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = c
	}
	return out, errors.Join(errs...)
}

// CheckpointAudit signs a checkpoint of this site's audit log now and has
// the other sites of the committee cosign it. It returns the checkpoint
// with the cosignatures it got, and an error naming each site that did not
// cosign (unreachable, or refusing: a refusal that names a rewrite means
// the witness holds a checkpoint this log contradicts).
func (n *Node) CheckpointAudit(ctx context.Context) (*audit.Checkpoint, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	if n.audit == nil {
		return nil, fmt.Errorf("keyquorum: audit log disabled (Config.DisableAudit)")
	}
	cp, err := n.audit.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: audit checkpoint: %w", err)
	}
	return n.cosign(ctx, cp)
}
