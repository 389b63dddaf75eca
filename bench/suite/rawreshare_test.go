package suite

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/resharing"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"github.com/keyquorum/keyquorum/internal/rawtss"
)

// rawReshare moves a committee made by rawtss.Keygen (tss-lib threshold t)
// to a new committee of len(newPre) parties with threshold newT, with raw
// tss-lib resharing in this process: messages go over channels, nothing is
// validated or stored. It is the baseline of the resharing benchmark, the
// counterpart of rawtss.Keygen and rawtss.Sign, which have no resharing.
// It returns the new committee's save data, in party order.
func rawReshare(ctx context.Context, old []*keygen.LocalPartySaveData, t int, newPre []keygen.LocalPreParams, newT int) ([]*keygen.LocalPartySaveData, error) {
	oldIDs := rawtss.PartyIDs(len(old))
	// The new committee gets its own party keys, after the old ones, as
	// tss-lib requires distinct IDs for a reshare.
	var unsorted tss.UnSortedPartyIDs
	for i := range newPre {
		k := len(old) + i + 1
		unsorted = append(unsorted, tss.NewPartyID(fmt.Sprint("new", k), fmt.Sprint("N", k), big.NewInt(int64(k))))
	}
	newIDs := tss.SortPartyIDs(unsorted)
	oldCtx, newCtx := tss.NewPeerContext(oldIDs), tss.NewPeerContext(newIDs)

	total := len(old) + len(newIDs)
	out := make(chan tss.Message, 64*total*total)
	end := make(chan *keygen.LocalPartySaveData, total)
	errs := make(chan error, 64*total*total)
	byKey := map[string]tss.Party{}
	var parties []tss.Party
	for i, id := range oldIDs {
		params := tss.NewReSharingParameters(tss.S256(), oldCtx, newCtx, id, len(old), t, len(newIDs), newT)
		p := resharing.NewLocalParty(params, *old[i], out, end)
		parties = append(parties, p)
		byKey[string(id.Key)] = p
	}
	for i, id := range newIDs {
		params := tss.NewReSharingParameters(tss.S256(), oldCtx, newCtx, id, len(old), t, len(newIDs), newT)
		save := keygen.NewLocalPartySaveData(len(newIDs))
		save.LocalPreParams = newPre[i]
		p := resharing.NewLocalParty(params, save, out, end)
		parties = append(parties, p)
		byKey[string(id.Key)] = p
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	spawn := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs <- fmt.Errorf("tss-lib panicked: %v", p)
				}
			}()
			if err := f(); err != nil {
				select {
				case errs <- err:
				case <-ctx.Done():
				}
			}
		}()
	}
	// New parties first: they wait for the old committee's messages.
	for i := len(parties) - 1; i >= 0; i-- {
		p := parties[i]
		spawn(func() error {
			if err := p.Start(); err != nil {
				return err
			}
			return nil
		})
	}
	var fresh []*keygen.LocalPartySaveData
	for done := 0; done < total; {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-errs:
			return nil, err
		case save := <-end:
			done++
			if save.Xi != nil { // old-only members end with their share zeroed
				fresh = append(fresh, save)
			}
		case msg := <-out:
			wire, routing, err := msg.WireBytes()
			if err != nil {
				return nil, err
			}
			for _, to := range msg.GetTo() {
				p := byKey[string(to.Key)]
				if p == nil {
					return nil, errors.New("message to an unknown party")
				}
				spawn(func() error {
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
	if len(fresh) != len(newIDs) {
		return nil, fmt.Errorf("resharing gave %d new shares for %d parties", len(fresh), len(newIDs))
	}
	return fresh, nil
}
