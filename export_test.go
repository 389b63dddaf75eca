package keyquorum

import "github.com/keyquorum/keyquorum/tss"

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
