// Package rawtss runs tss-lib v2.0.2 keygen, GG18 signing and resharing for
// a whole committee inside one process, with messages passed over Go channels and
// nothing else around them: no sessions, no validation, no storage. It is
// the baseline that benchmarks compare keyquorum against, and the signer
// behind fixture generation and tests that need a real threshold key
// without the rest of the stack.
//
// Party i (0-based) has the tss-lib party key i+1. Proofs are never
// disabled.
package rawtss

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/resharing"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/tss"
)

// PartyIDs returns the sorted tss-lib party IDs of an n-party committee.
func PartyIDs(n int) tss.SortedPartyIDs {
	unsorted := make(tss.UnSortedPartyIDs, n)
	for i := range unsorted {
		id := fmt.Sprint(i + 1)
		unsorted[i] = tss.NewPartyID(id, "P"+id, big.NewInt(int64(i+1)))
	}
	return tss.SortPartyIDs(unsorted)
}

// Keygen runs key generation for len(pre) parties where threshold+1 must
// sign (tss-lib's t), and returns each party's save data in party order.
func Keygen(ctx context.Context, pre []keygen.LocalPreParams, threshold int) ([]*keygen.LocalPartySaveData, error) {
	n := len(pre)
	ids := PartyIDs(n)
	peers := tss.NewPeerContext(ids)
	r := newRouter[*keygen.LocalPartySaveData](n)
	parties := make([]tss.Party, n)
	for i, id := range ids {
		params := tss.NewParameters(tss.S256(), peers, id, n, threshold)
		parties[i] = keygen.NewLocalParty(params, r.out, r.end, pre[i])
	}
	saves, err := r.run(ctx, parties)
	if err != nil {
		return nil, err
	}
	// Results arrive in completion order; put them in party order.
	slices.SortFunc(saves, func(a, b *keygen.LocalPartySaveData) int { return a.ShareID.Cmp(b.ShareID) })
	return saves, nil
}

// Sign runs GG18 signing of m with the parties at the given indexes of keys
// (a committee from [Keygen] with tss-lib threshold t; at least t+1 signers).
// delta, when not nil, is tss-lib's key-derivation
// delta; the caller must then have moved each key's ECDSAPub and BigXj to
// the derived key. Every signer's signature data is returned; they are equal.
func Sign(ctx context.Context, keys []*keygen.LocalPartySaveData, threshold int, signers []int, m, delta *big.Int) ([]*common.SignatureData, error) {
	all := PartyIDs(len(keys))
	if len(signers) < threshold+1 {
		return nil, fmt.Errorf("rawtss: %d signers cannot sign for threshold %d", len(signers), threshold)
	}
	var chosen tss.UnSortedPartyIDs
	for _, i := range signers {
		if i < 0 || i >= len(keys) {
			return nil, fmt.Errorf("rawtss: signer %d out of range", i)
		}
		id := all[i]
		chosen = append(chosen, tss.NewPartyID(id.Id, id.Moniker, id.KeyInt()))
	}
	ids := tss.SortPartyIDs(chosen)
	peers := tss.NewPeerContext(ids)
	r := newRouter[*common.SignatureData](len(ids))
	parties := make([]tss.Party, len(ids))
	for j, id := range ids {
		k := keys[int(id.KeyInt().Int64())-1]
		params := tss.NewParameters(tss.S256(), peers, id, len(ids), threshold)
		parties[j] = signing.NewLocalPartyWithKDD(m, params, *k, delta, r.out, r.end, 32)
	}
	return r.run(ctx, parties)
}

// Reshare moves a committee made by [Keygen] (tss-lib threshold t) to a new
// committee of len(newPre) parties with threshold newT, and returns the new
// committee's save data in party order. The new parties get their own
// tss-lib party keys, numbered after the old ones, as tss-lib requires
// distinct IDs in a reshare. The old parties' save data is zeroed in place
// by tss-lib at the end; pass copies to keep it.
func Reshare(ctx context.Context, old []*keygen.LocalPartySaveData, t int, newPre []keygen.LocalPreParams, newT int) ([]*keygen.LocalPartySaveData, error) {
	oldIDs := PartyIDs(len(old))
	var unsorted tss.UnSortedPartyIDs
	for i := range newPre {
		k := len(old) + i + 1
		unsorted = append(unsorted, tss.NewPartyID(fmt.Sprint("new", k), fmt.Sprint("N", k), big.NewInt(int64(k))))
	}
	newIDs := tss.SortPartyIDs(unsorted)
	oldCtx, newCtx := tss.NewPeerContext(oldIDs), tss.NewPeerContext(newIDs)
	r := newRouter[*keygen.LocalPartySaveData](len(old) + len(newIDs))
	var parties []tss.Party
	for i, id := range oldIDs {
		params := tss.NewReSharingParameters(tss.S256(), oldCtx, newCtx, id, len(old), t, len(newIDs), newT)
		parties = append(parties, resharing.NewLocalParty(params, *old[i], r.out, r.end))
	}
	for i, id := range newIDs {
		params := tss.NewReSharingParameters(tss.S256(), oldCtx, newCtx, id, len(old), t, len(newIDs), newT)
		save := keygen.NewLocalPartySaveData(len(newIDs))
		save.LocalPreParams = newPre[i]
		parties = append(parties, resharing.NewLocalParty(params, save, r.out, r.end))
	}
	saves, err := r.run(ctx, parties)
	if err != nil {
		return nil, err
	}
	// Every party ends with save data; the old committee's has no share.
	fresh := slices.DeleteFunc(saves, func(s *keygen.LocalPartySaveData) bool { return s.Xi == nil })
	if len(fresh) != len(newIDs) {
		return nil, fmt.Errorf("rawtss: resharing gave %d new shares for %d parties", len(fresh), len(newIDs))
	}
	slices.SortFunc(fresh, func(a, b *keygen.LocalPartySaveData) int { return a.ShareID.Cmp(b.ShareID) })
	return fresh, nil
}

// router delivers tss-lib messages between the parties of one run.
type router[T any] struct {
	out  chan tss.Message
	end  chan T
	errs chan error
	wg   sync.WaitGroup
}

func newRouter[T any](n int) *router[T] {
	// Large enough that no party ever blocks sending while the router is
	// busy: a round emits at most n messages per party.
	return &router[T]{
		out:  make(chan tss.Message, 64*n*n),
		end:  make(chan T, n),
		errs: make(chan error, 64*n*n),
	}
}

func (r *router[T]) run(ctx context.Context, parties []tss.Party) ([]T, error) {
	defer r.wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	byKey := make(map[string]tss.Party, len(parties))
	for _, p := range parties {
		byKey[string(p.PartyID().Key)] = p
	}
	for _, p := range parties {
		r.spawn(ctx, func() error {
			if err := p.Start(); err != nil {
				return err
			}
			return nil
		})
	}
	results := make([]T, 0, len(parties))
	for len(results) < len(parties) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-r.errs:
			return nil, err
		case res := <-r.end:
			results = append(results, res)
		case msg := <-r.out:
			wire, routing, err := msg.WireBytes()
			if err != nil {
				return nil, err
			}
			// A message goes to the parties it names (resharing names a
			// committee even for its broadcasts), or else to everyone else.
			var dests []tss.Party
			if len(routing.To) == 0 {
				for _, p := range parties {
					if string(p.PartyID().Key) != string(routing.From.Key) {
						dests = append(dests, p)
					}
				}
			} else {
				for _, to := range routing.To {
					p := byKey[string(to.Key)]
					if p == nil {
						return nil, fmt.Errorf("rawtss: message to unknown party %s", to)
					}
					dests = append(dests, p)
				}
			}
			for _, p := range dests {
				r.spawn(ctx, func() error {
					parsed, err := tss.ParseWireMessage(wire, routing.From, routing.IsBroadcast)
					if err != nil {
						return err
					}
					if _, err := p.Update(parsed); err != nil {
						return err
					}
					return nil
				})
			}
		}
	}
	return results, nil
}

func (r *router[T]) spawn(ctx context.Context, f func() error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				r.report(ctx, fmt.Errorf("rawtss: tss-lib panicked: %v", p))
			}
		}()
		if err := f(); err != nil {
			r.report(ctx, err)
		}
	}()
}

func (r *router[T]) report(ctx context.Context, err error) {
	var terr *tss.Error
	if errors.As(err, &terr) {
		err = fmt.Errorf("rawtss: %w", terr)
	}
	select {
	case r.errs <- err:
	case <-ctx.Done():
	}
}
