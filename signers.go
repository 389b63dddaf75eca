package keyquorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// ErrNotEnoughSigners means a request without explicit signers found
// fewer reachable committee members than the key's threshold needs. It
// comes with a *tss.UnreachableError naming the sites that could not be
// reached.
var ErrNotEnoughSigners = errors.New("keyquorum: not enough sites are reachable to sign")

// chooseSigners picks the signer set for a request that named none: this
// site and M-1 co-signers that are up. Peers with a live connection come
// first (the most recently heard from first); when fewer than M-1 are
// connected, the others are dialed at once (a site whose port refuses
// fails at once). With preferPool, a set with ready GG20 presignatures for
// (key, path) whose members are all up is taken when there is one.
// Sites in exclude (for example ones that just dropped) are not chosen.
func (n *Node) chooseSigners(ctx context.Context, keyID, path string, preferPool bool, exclude map[tss.PartyID]bool) ([]tss.PartyID, error) {
	info, err := n.eng.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	need := info.Threshold - 1
	var others []tss.PartyID
	for _, p := range info.Parties {
		if p != n.party && !exclude[p] {
			others = append(others, p)
		}
	}
	up := n.reachable(ctx, others, need)
	if preferPool {
		if set := n.readyPool(ctx, keyID, path, info.Threshold, up); set != nil {
			return set, nil
		}
	}
	var live []tss.PartyID
	for _, p := range others {
		if up[p] == nil {
			live = append(live, p)
		}
	}
	if len(live) < need {
		var down []tss.PartyID
		var cause error
		for _, p := range info.Parties {
			if p == n.party {
				continue
			}
			if exclude[p] {
				down = append(down, p)
			} else if err := up[p]; err != nil {
				down = append(down, p)
				cause = err
			}
		}
		return nil, fmt.Errorf("%w: key %s needs %d signers, and only %d of the committee (this site included) can be reached: %w",
			ErrNotEnoughSigners, keyID, info.Threshold, len(live)+1, &tss.UnreachableError{Parties: down, Err: unwrapUnreachable(cause)})
	}
	// The most recently heard from first, then by party ID.
	seen := n.net.lastSeenTimes()
	slices.SortStableFunc(live, func(a, b tss.PartyID) int {
		ca, cb := n.net.Connected(a), n.net.Connected(b)
		if ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return seen[b].Compare(seen[a])
	})
	return tss.SortParties(append([]tss.PartyID{n.party}, live[:need]...)), nil
}

// unwrapUnreachable returns the cause inside a *tss.UnreachableError, so
// that the error chooseSigners builds names every site once.
func unwrapUnreachable(err error) error {
	var ue *tss.UnreachableError
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// reachable reports, for each peer, nil when it is up and otherwise why
// not. Connected peers count as up without a dial; the others are dialed
// concurrently, but only when fewer than need peers are connected.
func (n *Node) reachable(ctx context.Context, peers []tss.PartyID, need int) map[tss.PartyID]error {
	out := make(map[tss.PartyID]error, len(peers))
	var dial []tss.PartyID
	for _, p := range peers {
		if n.net.Connected(p) {
			out[p] = nil
		} else {
			dial = append(dial, p)
		}
	}
	if len(peers)-len(dial) >= need {
		for _, p := range dial {
			out[p] = errNotDialed
		}
		return out
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, p := range dial {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.net.Reach(ctx, p)
			mu.Lock()
			out[p] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// errNotDialed marks a peer that was not needed, so not dialed: enough
// others were connected.
var errNotDialed = errors.New("not connected (not dialed: enough other sites were)")

// readyPool returns a signer set of (key, path) for which this site's own
// pool has ready presignatures and whose co-signers are all up, or nil.
func (n *Node) readyPool(ctx context.Context, keyID, path string, threshold int, up map[tss.PartyID]error) []tss.PartyID {
	for _, spec := range n.pools.list() {
		if spec.Initiator != n.party || spec.KeyID != keyID || spec.Path != path || len(spec.Signers) != threshold || !slices.Contains(spec.Signers, n.party) {
			continue
		}
		ok := true
		for _, p := range spec.Signers {
			if p != n.party {
				if err, known := up[p]; !known || err != nil {
					ok = false
					break
				}
			}
		}
		if !ok {
			continue
		}
		if st, err := n.eng.PoolStatus(ctx, spec); err == nil && st.Ready > 0 {
			return slices.Clone(spec.Signers)
		}
	}
	return nil
}

// droppedSigners returns the co-signers an error says could not be
// reached, when a request with chosen signers may be retried without them.
func droppedSigners(err error, self tss.PartyID) map[tss.PartyID]bool {
	var ue *tss.UnreachableError
	if !errors.As(err, &ue) {
		return nil
	}
	out := map[tss.PartyID]bool{}
	for _, p := range ue.Parties {
		if p != self {
			out[p] = true
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// lastSeenTimes returns when each peer was last heard from.
func (o *observedNetwork) lastSeenTimes() map[tss.PartyID]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[tss.PartyID]time.Time, len(o.lastSeen))
	for p, t := range o.lastSeen {
		out[p] = t
	}
	return out
}
