package offline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/keyquorum/keyquorum/tss"
)

// stateKind is the store record kind of the sequence state; the record ID
// is the committee ID.
const stateKind = "offline-seq"

// seqState is the durable sequence state of one committee (FORMAT.md,
// "Sequence state").
type seqState struct {
	V    int                    `json:"v"`
	Recv map[tss.PartyID]uint64 `json:"recv"`
	Sent map[tss.PartyID]uint64 `json:"sent"`
}

func newSeqState() seqState {
	return seqState{V: 1, Recv: map[tss.PartyID]uint64{}, Sent: map[tss.PartyID]uint64{}}
}

func (s seqState) clone() seqState {
	c := newSeqState()
	for k, v := range s.Recv {
		c.Recv[k] = v
	}
	for k, v := range s.Sent {
		c.Sent[k] = v
	}
	return c
}

// loadState reads the newest version of the committee's state; a missing
// record is a fresh state at version 0.
func loadState(ctx context.Context, st tss.Store, committee string) (seqState, uint64, error) {
	data, version, err := st.Get(ctx, stateKind, committee)
	if errors.Is(err, fs.ErrNotExist) {
		return newSeqState(), 0, nil
	}
	if err != nil {
		return seqState{}, 0, fmt.Errorf("offline: read the sequence state of committee %s: %w", committee, err)
	}
	s := newSeqState()
	if err := json.Unmarshal(data, &s); err != nil || s.V != 1 || s.Recv == nil || s.Sent == nil {
		return seqState{}, 0, fmt.Errorf("offline: the sequence state of committee %s (version %d) is not readable; restore the store from a backup", committee, version)
	}
	return s, version, nil
}

// saveState writes s as the next version and prunes the older ones. The
// write is atomic and durable when st is an hsmshare.Store.
func saveState(ctx context.Context, st tss.Store, committee string, version uint64, s seqState) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("offline: encode the sequence state: %w", err)
	}
	if err := st.Put(ctx, stateKind, committee, version, data); err != nil {
		return fmt.Errorf("offline: write the sequence state of committee %s: %w", committee, err)
	}
	// Old versions are only clutter: the newest one is the state. A
	// failed prune leaves them for the next write to remove; the new
	// version is written, so reporting the failure as one would be wrong.
	_ = st.Prune(ctx, stateKind, committee, version)
	return nil
}
