package keyquorum

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// Status is a snapshot of a site. Its JSON form is what `kqnode status`
// prints. It holds nothing secret.
type Status struct {
	// PeerID is this site's party ID.
	PeerID tss.PartyID `json:"peer_id"`
	// IdentityPublicKey is the site's P-256 identity key, hex of the
	// 65-byte uncompressed SEC 1 point.
	IdentityPublicKey string `json:"identity_public_key"`
	// Offline reports a node opened with Config.Offline.
	Offline bool `json:"offline"`
	// Started is when the node was opened.
	Started time.Time `json:"started"`
	// UptimeMS is how long it has been open, in milliseconds.
	UptimeMS int64 `json:"uptime_ms"`
	// ListenAddrs are the libp2p addresses the site listens on.
	ListenAddrs []string `json:"listen_addrs"`
	// Peers are the other committee members (see PeerStatus).
	Peers []PeerStatus `json:"peers"`
	// PeersReachable counts peers whose last send succeeded.
	PeersReachable int `json:"peers_reachable"`
	// PeersConnected counts peers with a live connection now.
	PeersConnected int `json:"peers_connected"`
	// Keys are the keys this site holds shares of, with their pools.
	Keys []KeyStatus `json:"keys"`
	// PreParams is the Paillier pre-parameter pool keygen draws from.
	PreParams PreParamsStatus `json:"preparams"`
	// Operations are the operations started here that are still running.
	Operations []Operation `json:"operations"`
	// Finished are the latest finished operations started here, oldest
	// first.
	Finished []Operation `json:"finished"`
	// Joined are the latest sessions other sites proposed and this site
	// joined, oldest first.
	Joined []JoinedSession `json:"joined"`
	// Sessions are the protocol sessions running on this site now, whoever
	// proposed them: phase, round and the parties each is waiting for.
	Sessions []tss.SessionInfo `json:"sessions"`
	// Network counts what the transport sent, received, dropped (by
	// reason) and refused since the node opened.
	Network *NetworkStats `json:"network,omitempty"`
	// Engine counts protocol messages the engine dropped, by reason.
	Engine *tss.Stats `json:"engine,omitempty"`
	// EngineError says why the protocol engine stopped, if it did.
	EngineError string `json:"engine_error,omitempty"`
	// Entropy describes where the site's secrets draw their randomness.
	Entropy EntropyStatus `json:"entropy"`
	// Audit describes this site's audit log; nil when it is disabled.
	Audit *AuditStatus `json:"audit,omitempty"`
	// AuditAlerts are rewrites of other sites' audit logs this site caught
	// as their witness. Any entry here needs the operators' attention.
	AuditAlerts []string `json:"audit_alerts,omitempty"`
	// Reshares are the reshares this site's operator authorized, or that
	// this site proposed or joined, since the node opened, with their
	// phase and pending epoch.
	Reshares []ReshareStatus `json:"reshares,omitempty"`
}

// EntropyStatus describes the randomness source of a site's secrets.
type EntropyStatus struct {
	// Source is "token+os" (the token's generator mixed with the
	// operating system's, hsmshare.Random) or "os" (the operating
	// system's alone, only with Config.AllowNoTokenRNG on a token without
	// a generator).
	Source string `json:"source"`
	// TokenDraws counts, for "token+os", how often the mixed source drew
	// from the token's generator (C_GenerateRandom) since the node opened:
	// its first seed and every reseed.
	TokenDraws uint64 `json:"token_draws"`
	// Reads and Bytes count the reads and bytes the mixed source served
	// since the node opened.
	Reads uint64 `json:"reads"`
	Bytes uint64 `json:"bytes"`
}

// AuditStatus describes a site's audit log.
type AuditStatus struct {
	// Entries is the number of entries.
	Entries uint64 `json:"entries"`
	// Checkpoint is the size the newest signed checkpoint covers.
	Checkpoint uint64 `json:"checkpoint"`
	// CosignedBy names the witnesses that cosigned the newest checkpoint.
	CosignedBy []string `json:"cosigned_by"`
	// Error says why the log cannot take entries, if it cannot (the site
	// then refuses to sign).
	Error string `json:"error,omitempty"`
}

// KeyStatus describes one key and its presignature pools on this site.
type KeyStatus struct {
	// KeyID names the key on every site.
	KeyID string `json:"key_id"`
	// Threshold is M: how many sites must sign.
	Threshold int `json:"threshold"`
	// Parties is the committee, sorted.
	Parties []tss.PartyID `json:"parties"`
	// PublicKey is the 33-byte compressed group key, hex.
	PublicKey string `json:"public_key"`
	// ChainCode is the 32-byte BIP-32 chain code, hex.
	ChainCode string `json:"chain_code"`
	// Label is this site's name for the key (Node.SetKeyLabel), or "".
	Label string `json:"label,omitempty"`
	// Epoch counts the key's committees (1 after keygen).
	Epoch uint64 `json:"epoch"`
	// Created is when this site's share of the current epoch was made
	// (keygen for epoch 1); absent for shares stored by earlier versions.
	Created time.Time `json:"created,omitzero"`
	// SignersUp are the committee members this site can sign with right
	// now without naming signers: itself and the others it is connected
	// to, sorted. Any M of them make a signer set; fewer than M means a
	// request without named signers fails at once (see
	// SignOptions.Signers).
	SignersUp []tss.PartyID `json:"signers_up"`
	// Pools are the presignature pools of this key this site knows.
	Pools []PoolStatus `json:"pools"`
}

// PoolStatus describes one presignature pool on this site.
type PoolStatus struct {
	// Signers is the pool's signer set, sorted.
	Signers []tss.PartyID `json:"signers"`
	// Path is the derivation path ("m" for the key itself).
	Path string `json:"path"`
	// Initiator is the site that made the pool's presignatures and the
	// only one that spends them: this site for its own pools; for another
	// site's pool, this site holds its shares of that site's presignatures.
	Initiator tss.PartyID `json:"initiator"`
	// Target is the number of ready presignatures this site keeps in the
	// pool (Config.PoolTarget, or SetPoolTarget's for this pool); 0 when
	// nothing refills it, and always for another site's pool.
	Target int `json:"target"`
	tss.PoolStatus
	// Error says why the pool could not be read, if it could not.
	Error string `json:"error,omitempty"`
}

// PreParamsStatus describes the pre-parameter pool.
type PreParamsStatus struct {
	tss.PreParamsStatus
	// Generation reports whether sets are generated in the background.
	Generation bool `json:"generation"`
}

// Status reports the site's peers, keys, pools, pre-parameters and
// operations. It does not contact other sites.
func (n *Node) Status(ctx context.Context) (*Status, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	st := &Status{
		PeerID: n.party, Offline: n.eng == nil, Started: n.started, UptimeMS: time.Since(n.started).Milliseconds(),
		ListenAddrs: n.Addrs(), Peers: []PeerStatus{}, Keys: []KeyStatus{},
	}
	if b, err := n.identity.PublicKey().Bytes(); err == nil {
		st.IdentityPublicKey = hex.EncodeToString(b)
	}
	pp, err := n.prepool.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: status of the pre-parameter pool: %w", err)
	}
	st.PreParams = PreParamsStatus{PreParamsStatus: pp, Generation: n.eng != nil && !n.cfg.NoPreParamsGeneration}
	if !st.PreParams.Generation {
		st.PreParams.Target = 0 // nothing keeps the pool at a target
	}
	st.Operations, st.Finished, st.Joined = n.ops.snapshot()
	st.Entropy = EntropyStatus{Source: "os"}
	if n.random != nil {
		rs := n.random.Stats()
		st.Entropy = EntropyStatus{Source: "token+os", TokenDraws: rs.TokenDraws, Reads: rs.Reads, Bytes: rs.Bytes}
	}
	n.mu.Lock()
	if n.engineErr != nil {
		st.EngineError = n.engineErr.Error()
	}
	if n.audit != nil {
		as := &AuditStatus{Entries: n.audit.Size(), CosignedBy: []string{}}
		if cp := n.audit.LatestCheckpoint(); cp != nil {
			as.Checkpoint = cp.Size
			for _, c := range cp.Cosignatures {
				as.CosignedBy = append(as.CosignedBy, c.Name)
			}
		}
		if err := n.audit.Healthy(); err != nil {
			as.Error = err.Error()
		}
		st.Audit = as
	}
	st.AuditAlerts = n.AuditAlerts()
	st.Reshares = n.reshares.list()
	n.mu.Unlock()
	if n.eng == nil {
		return st, nil
	}
	st.Sessions = n.eng.Sessions()
	ts := n.net.Stats()
	st.Network = &NetworkStats{
		MessagesSent: ts.MessagesSent, MessagesReceived: ts.MessagesReceived,
		Dropped: make(map[string]uint64), StreamsRefused: ts.StreamsRefused,
		ConnectionsRefused: ts.ConnectionsRefused, DialFailures: ts.DialFailures,
		Reconnects: ts.Reconnects, Panics: ts.Panics,
	}
	for reason, c := range ts.Dropped {
		st.Network.Dropped[string(reason)] = c
	}
	es := n.eng.Stats()
	st.Engine = &es
	st.Peers = n.net.status()
	for _, p := range st.Peers {
		if p.Reachable != nil && *p.Reachable {
			st.PeersReachable++
		}
		if p.Connected {
			st.PeersConnected++
		}
	}
	keys, err := n.eng.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: list keys: %w", err)
	}
	pools := n.pools.list()
	for _, k := range keys {
		ks := KeyStatus{KeyID: k.ID, Threshold: k.Threshold, Parties: k.Parties,
			PublicKey: hex.EncodeToString(k.PublicKey), ChainCode: hex.EncodeToString(k.ChainCode),
			Epoch: k.Epoch, Created: k.Created, Pools: []PoolStatus{}, SignersUp: []tss.PartyID{}}
		if ks.Label, err = n.keyLabel(ctx, k.ID); err != nil {
			return nil, fmt.Errorf("keyquorum: status: %w", err)
		}
		for _, p := range k.Parties {
			if p == n.party || n.net.Connected(p) {
				ks.SignersUp = append(ks.SignersUp, p)
			}
		}
		for _, spec := range pools {
			if spec.KeyID != k.ID {
				continue
			}
			ps := PoolStatus{Signers: spec.Signers, Path: orRoot(spec.Path), Initiator: spec.Initiator,
				Target: n.pools.target(spec, n.party, n.cfg.PoolTarget)}
			if s, err := n.eng.PoolStatus(ctx, spec); err != nil {
				ps.Error = err.Error()
			} else {
				ps.PoolStatus = s
			}
			ks.Pools = append(ks.Pools, ps)
		}
		st.Keys = append(st.Keys, ks)
	}
	return st, nil
}

// NetworkStats are the transport's counters (see [transport.Stats]).
type NetworkStats struct {
	// MessagesSent counts envelopes written to peers, one per recipient.
	MessagesSent uint64 `json:"messages_sent"`
	// MessagesReceived counts messages received from peers.
	MessagesReceived uint64 `json:"messages_received"`
	// Dropped counts received envelopes dropped, by reason.
	Dropped map[string]uint64 `json:"dropped"`
	// StreamsRefused counts inbound streams refused over the per-peer limit.
	StreamsRefused uint64 `json:"streams_refused"`
	// ConnectionsRefused counts connections refused by the committee
	// gater (a peer outside the committee, or a classical key exchange
	// when post-quantum is required).
	ConnectionsRefused uint64 `json:"connections_refused"`
	// DialFailures counts failed attempts to reach a peer.
	DialFailures uint64 `json:"dial_failures"`
	// Reconnects counts streams reopened after a failure.
	Reconnects uint64 `json:"reconnects"`
	// Panics counts recovered panics in the transport; report any.
	Panics uint64 `json:"panics"`
}
