package keyquorum

import (
	"context"

	"github.com/keyquorum/keyquorum/tss"
)

// CompromisedEngine returns n's protocol engine and lets it propose
// signing sessions that bypass n's own checks: n plays a compromised site
// that runs modified code, for the attacks of the tests.
func CompromisedEngine(n *Node) *tss.Engine {
	n.proposeUnchecked.Store(true)
	return n.eng
}

// SignEvidence encodes a signing proposal's evidence as Node.Sign does.
func SignEvidence(intent, approvals, user []byte) []byte {
	return signEvidence{intent: intent, approvals: approvals, user: user}.encode()
}

// ProbePeers measures the round-trip time to n's peers now,
// as n's metrics do every peerRTTInterval.
func ProbePeers(n *Node) { n.probeOnce(n.runCtx) }

// OpenSealedRecords opens every version of every record of the kinds
// given in n's store and returns how many it opened.
func OpenSealedRecords(ctx context.Context, n *Node, kinds ...string) (int, error) {
	count := 0
	for _, kind := range kinds {
		ids, err := n.store.List(ctx, kind)
		if err != nil {
			return count, err
		}
		for _, id := range ids {
			vs, err := n.store.Versions(ctx, kind, id)
			if err != nil {
				return count, err
			}
			for _, v := range vs {
				b, err := n.store.GetVersion(ctx, kind, id, v)
				if err != nil {
					return count, err
				}
				clear(b)
				count++
			}
		}
	}
	return count, nil
}

// RecordAuditDetail appends an entry of type typ with a sealed detail
// part to n's audit log, as n's sign.authorize entries are written.
func RecordAuditDetail(ctx context.Context, n *Node, typ string, fields map[string]string, detail []byte) error {
	return n.recordDetail(ctx, typ, fields, detail)
}

// OpenAuditDetail opens sealed for the entry detail id with n's audit
// sealer, as n's audit log does.
func OpenAuditDetail(ctx context.Context, n *Node, id string, sealed []byte) ([]byte, error) {
	return n.details.Open(ctx, id, sealed)
}
