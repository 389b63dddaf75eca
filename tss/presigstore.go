package tss

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/keyquorum/keyquorum/tss/gg20"
)

// Presignatures are stored in batches: one sealed record per presigning
// session, holding the presignatures that session made, and a Ledger of the
// same name in the party's HSM whose slot i says whether presignature i of
// the batch was used. The record id is "<pool>.<batch>", where pool is a hash
// of what the presignatures are bound to (key, epoch, signers, derivation
// path) and batch is 16 random bytes in hex.
//
// A record is written once and never changes. Using presignatures marks
// their slots in the batch's ledger before any signature share made with them
// leaves this party: one change of one HSM object per batch touched, whatever
// the number of signatures. A restored copy of the store brings records back
// but cannot unmark a slot; a record whose ledger is gone counts as used up
// and is deleted when it is found. A batch whose slots are all used is
// retired in the background: its record is overwritten and deleted, then its
// ledger destroyed.
//
// Record layout (big-endian), version 2:
//
//	"KQPB" | version uint8 (2) | key ID length uint8 | key ID | epoch uint64 |
//	count uint32 | count × { id [32] | length uint32 | gg20 presignature }
//
// Version 1 records (made before ledgers existed) are discarded when found:
// nothing can tell whether one of them was used.
const (
	kindPresig       = "presig"
	presigBatchMagic = "KQPB"
	presigBatchVer   = 2
)

// errOldBatch marks a batch record in the format before ledgers.
var errOldBatch = errors.New("presignature batch from before ledgers")

// PoolSpec names a set of interchangeable presignatures: same key, same
// signers, same derivation path, same initiator. Presignatures are bound to
// the first three when they are made, and assigned to the fourth.
//
// A presignature belongs to the signer that initiated the presigning
// session that made it, and only that signer may spend it: every signer
// looks up the presignatures of an online signing session in the pool of
// the session's initiator. Two signers that initiate signing with the same
// signer set at the same time therefore never pick the same presignature,
// and a signer that names another initiator's presignatures is refused
// before anything is consumed. Each signer that initiates GG20 signing
// keeps its own pool.
type PoolSpec struct {
	// KeyID names the key.
	KeyID string
	// Signers are the parties that sign together, sorted.
	Signers []PartyID
	// Path is the BIP-32 derivation path ("" for the root key).
	Path string
	// Initiator is the signer that makes this pool's presignatures and is
	// the only one that spends them. Empty means this party.
	Initiator PartyID
}

// poolKey returns the 16-hex-digit name of the pool for key epoch; the
// initiator must be set.
func (s PoolSpec) poolKey(epoch uint64) string {
	h := sha256.New()
	h.Write([]byte("keyquorum/presig-pool/v2"))
	writeLenPrefixed(h, []byte(s.KeyID))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], epoch)
	h.Write(b[:])
	for _, p := range s.Signers {
		writeLenPrefixed(h, []byte(p))
	}
	writeLenPrefixed(h, []byte(s.Path))
	writeLenPrefixed(h, []byte(s.Initiator))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// own returns s with Initiator set to this party when it is empty.
func (e *Engine) own(s PoolSpec) PoolSpec {
	if s.Initiator == "" {
		s.Initiator = e.net.Self()
	}
	return s
}

// presigIndex tracks which presignatures this party holds, by pool, without
// keeping any secret in memory: it only knows IDs and where each one is
// stored.
type presigIndex struct {
	mu     sync.Mutex
	loaded map[string]bool              // pool keys whose records were read
	pools  map[string][]string          // pool key → unused presignature IDs (hex), oldest first
	where  map[string]presigRef         // presignature ID → its batch and slot
	left   map[string]int               // batch record → its presignatures still indexed
	inUse  map[string]bool              // IDs reserved by a running online session
	making map[string]int               // pool key → presignatures being made
	counts map[string]*PresignPoolStats // pool key → counters
}

// presigRef locates a presignature: its batch record and ledger, and its
// slot in both.
type presigRef struct {
	rec  string
	slot int
}

// PresignPoolStats counts what happened to a pool's presignatures since the
// engine started.
type PresignPoolStats struct {
	// Made counts presignatures made and stored.
	Made uint64 `json:"made"`
	// Used counts presignatures consumed by signing (including burnt ones).
	Used uint64 `json:"used"`
	// Discarded counts presignatures dropped by reconciliation, and those
	// found at start that can no longer be used (their batch's ledger is
	// gone, or its slot is marked although the store still holds them, as
	// after a restore from backup).
	Discarded uint64 `json:"discarded"`
	// Burned counts presignatures this party consumed as the initiator
	// of an online signing that then failed: they are counted in Used
	// too, and no signature came of them.
	Burned uint64 `json:"burned"`
	// Foreign counts online sessions this party refused because a signer
	// other than the pool's initiator proposed to spend its presignatures
	// (by mistake, or to burn them on purpose); nothing was consumed.
	Foreign uint64 `json:"foreign,omitempty"`
	// ForeignBy is the last signer that did so.
	ForeignBy PartyID `json:"foreign_by,omitempty"`
}

func newPresigIndex() *presigIndex {
	return &presigIndex{
		loaded: make(map[string]bool), pools: make(map[string][]string),
		where: make(map[string]presigRef), left: make(map[string]int),
		inUse: make(map[string]bool), making: make(map[string]int),
		counts: make(map[string]*PresignPoolStats),
	}
}

func (x *presigIndex) stats(pool string) *PresignPoolStats {
	s := x.counts[pool]
	if s == nil {
		s = &PresignPoolStats{}
		x.counts[pool] = s
	}
	return s
}

// ledger returns the engine's presignature ledger, or an error saying GG20
// needs one.
func (e *Engine) ledger() (Ledger, error) {
	if e.cfg.Ledger == nil {
		return nil, fmt.Errorf("%w: %s has no presignature ledger (tss.Config.Ledger; hsmshare.Store is one), so it cannot make or use GG20 presignatures", ErrNoLedger, e.net.Self())
	}
	return e.cfg.Ledger, nil
}

// loadPool reads this pool's batch records and their ledgers once, to learn
// which unused presignatures they hold. Batches that can no longer be used
// (ledger gone, every slot used, old format) are retired on the way, and
// ledgers of this pool without a record are destroyed. Caller holds x.mu.
func (e *Engine) loadPool(ctx context.Context, pool string) error {
	x := e.presigs
	if x.loaded[pool] {
		return nil
	}
	led, err := e.ledger()
	if err != nil {
		return err
	}
	recs, err := e.cfg.Store.List(ctx, kindPresig)
	if err != nil {
		return fmt.Errorf("tss: list presignatures: %w", err)
	}
	recs = slices.DeleteFunc(recs, func(r string) bool { return !strings.HasPrefix(r, pool+".") })
	var retire []string
	for _, rec := range recs {
		data, b, err := e.readBatch(ctx, rec)
		if errors.Is(err, errOldBatch) {
			e.log.Warn("discarding presignatures stored before ledgers existed: nothing shows whether they were used", "batch", rec)
			retire = append(retire, rec)
			continue
		}
		if err != nil {
			return err
		}
		used, err := led.LedgerUsed(ctx, rec)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			clear(data)
			e.log.Warn("discarding presignatures whose ledger is gone from the HSM: they were used up, or the store was restored from a backup", "batch", rec, "count", len(b.entries))
			x.stats(pool).Discarded += uint64(len(b.entries))
			ev := PresignatureEvent{Change: PresignaturesDiscarded, Pool: pool, Spec: PoolSpec{KeyID: b.keyID}, Epoch: b.epoch,
				IDs: batchIDs(b), Reason: "their batch's ledger is gone from the HSM: they were used up, or the store was restored from a backup"}
			// Reported outside x.mu, which the caller holds.
			e.background(func(ctx context.Context) { _ = e.presigEvent(ctx, ev) })
			retire = append(retire, rec)
			continue
		case err != nil:
			clear(data)
			return fmt.Errorf("tss: read the ledger of presignature batch %s: %w", rec, err)
		case len(used) != len(b.entries):
			clear(data)
			return fmt.Errorf("tss: presignature batch %s holds %d presignatures but its ledger has %d slots", rec, len(b.entries), len(used))
		}
		n := 0
		for i, en := range b.entries {
			if used[i] {
				continue
			}
			x.pools[pool] = append(x.pools[pool], en.id)
			x.where[en.id] = presigRef{rec: rec, slot: i}
			n++
		}
		clear(data)
		if n == 0 {
			retire = append(retire, rec)
			continue
		}
		x.left[rec] = n
	}
	// Ledgers of this pool without a record: a crash between creating a
	// ledger and writing its record, or a store restored to before a batch.
	names, err := led.Ledgers(ctx)
	if err != nil {
		return fmt.Errorf("tss: list presignature ledgers: %w", err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, pool+".") && !slices.Contains(recs, name) {
			if err := led.DeleteLedger(ctx, name); err != nil {
				return fmt.Errorf("tss: destroy the ledger of missing presignature batch %s: %w", name, err)
			}
		}
	}
	for _, rec := range retire {
		if err := e.retireBatch(ctx, rec); err != nil {
			return err
		}
	}
	x.loaded[pool] = true
	return nil
}

// batch is a decoded batch record. Its entries point into the record's
// plaintext, which the caller clears when done.
type batch struct {
	keyID   string
	epoch   uint64
	entries []batchEntry
}

// readBatch unseals one batch record. The caller clears data when done.
func (e *Engine) readBatch(ctx context.Context, rec string) (data []byte, b *batch, err error) {
	data, _, err = e.cfg.Store.Get(ctx, kindPresig, rec)
	if err != nil {
		return nil, nil, fmt.Errorf("tss: read presignature batch %s: %w", rec, err)
	}
	b, err = parseBatch(data)
	if err != nil {
		clear(data)
		if errors.Is(err, errOldBatch) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("tss: presignature batch %s: %w", rec, err)
	}
	return data, b, nil
}

// batchEntry is one presignature in a batch record: its public ID and its
// encoding, which is only decoded (and checked) when the presignature is
// used. Keeping entries raw lets using one presignature cost one decode, not
// one per presignature in the batch.
type batchEntry struct {
	id  string // hex
	enc []byte
}

func parseBatch(b []byte) (*batch, error) {
	if len(b) < 5 || string(b[:4]) != presigBatchMagic {
		return nil, errors.New("not a presignature batch")
	}
	switch b[4] {
	case presigBatchVer:
	case 1:
		return nil, errOldBatch
	default:
		return nil, fmt.Errorf("presignature batch format %d is not supported", b[4])
	}
	b = b[5:]
	if len(b) < 1 || len(b) < 1+int(b[0])+12 {
		return nil, errors.New("truncated batch")
	}
	out := &batch{keyID: string(b[1 : 1+int(b[0])])}
	b = b[1+int(b[0]):]
	out.epoch = binary.BigEndian.Uint64(b)
	n := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	if n == 0 || n > maxBatch {
		return nil, fmt.Errorf("batch of %d presignatures", n)
	}
	out.entries = make([]batchEntry, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(b) < 36 {
			return nil, errors.New("truncated batch")
		}
		id := hex.EncodeToString(b[:32])
		l := binary.BigEndian.Uint32(b[32:])
		if uint64(l) > uint64(len(b)-36) {
			return nil, errors.New("truncated batch")
		}
		out.entries = append(out.entries, batchEntry{id: id, enc: b[36 : 36+l]})
		b = b[36+l:]
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes in batch")
	}
	return out, nil
}

func encodeBatch(keyID string, epoch uint64, pss []*gg20.Presignature) ([]byte, error) {
	if len(keyID) > 255 {
		return nil, errors.New("key ID too long")
	}
	encs := make([][]byte, 0, len(pss))
	defer func() {
		for _, e := range encs {
			clear(e)
		}
	}()
	size := 5 + 1 + len(keyID) + 12
	for _, ps := range pss {
		b, err := ps.MarshalBinary()
		if err != nil {
			return nil, err
		}
		encs = append(encs, b)
		size += 36 + len(b)
	}
	out := make([]byte, 0, size)
	out = append(out, presigBatchMagic...)
	out = append(out, presigBatchVer, byte(len(keyID)))
	out = append(out, keyID...)
	out = binary.BigEndian.AppendUint64(out, epoch)
	out = binary.BigEndian.AppendUint32(out, uint32(len(pss)))
	for i, ps := range pss {
		id := ps.ID()
		out = append(out, id[:]...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(encs[i])))
		out = append(out, encs[i]...)
	}
	return out, nil
}

// storeBatch seals a new batch for pool, creates its ledger first and
// indexes it.
func (e *Engine) storeBatch(ctx context.Context, pool, keyID string, epoch uint64, pss []*gg20.Presignature) error {
	led, err := e.ledger()
	if err != nil {
		return err
	}
	var rnd [16]byte
	if _, err := io.ReadFull(e.cfg.Rand, rnd[:]); err != nil {
		return fmt.Errorf("tss: read randomness: %w", err)
	}
	rec := pool + "." + hex.EncodeToString(rnd[:])
	data, err := encodeBatch(keyID, epoch, pss)
	if err != nil {
		return fmt.Errorf("tss: encode presignatures: %w", err)
	}
	defer clear(data)
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := e.loadPool(ctx, pool); err != nil {
		return err
	}
	// The ledger comes first: a record without a ledger counts as used up.
	if err := led.CreateLedger(ctx, rec, len(pss)); err != nil {
		return fmt.Errorf("tss: create the ledger of new presignatures: %w", err)
	}
	if err := e.cfg.Store.Put(ctx, kindPresig, rec, 1, data); err != nil {
		if derr := led.DeleteLedger(ctx, rec); derr != nil {
			e.log.Warn("ledger of unstored presignatures left behind; it is removed at the next start", "batch", rec, "err", derr.Error())
		}
		return fmt.Errorf("tss: store presignatures: %w", err)
	}
	for i, ps := range pss {
		id := ps.ID()
		hid := hex.EncodeToString(id[:])
		x.pools[pool] = append(x.pools[pool], hid)
		x.where[hid] = presigRef{rec: rec, slot: i}
	}
	x.left[rec] = len(pss)
	x.stats(pool).Made += uint64(len(pss))
	return nil
}

// reserve picks n ready presignatures of pool (oldest first) and marks them
// in use so no concurrent session picks them too.
func (e *Engine) reserve(ctx context.Context, pool string, n int) ([]string, error) {
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := e.loadPool(ctx, pool); err != nil {
		return nil, err
	}
	var out []string
	for _, id := range x.pools[pool] {
		if len(out) == n {
			break
		}
		if !x.inUse[id] {
			out = append(out, id)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("%w: %d of %d ready in this pool; presign more", ErrNoPresignature, len(out), n)
	}
	for _, id := range out {
		x.inUse[id] = true
	}
	return out, nil
}

// checkOwner refuses an online session by proposer that names
// presignatures this party holds in another pool than pool, the proposer's
// own: only a pool's initiator spends its presignatures. The refusal is
// counted in the other pool's stats and logged naming the proposer.
// Presignatures of pools this party has not loaded since it started are
// not recognised here; consume then finds them missing from pool, and
// nothing is consumed either way.
func (e *Engine) checkOwner(ctx context.Context, pool string, ids []string, proposer PartyID) error {
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := e.loadPool(ctx, pool); err != nil {
		return err
	}
	for _, id := range ids {
		ref, ok := x.where[id]
		if !ok || strings.HasPrefix(ref.rec, pool+".") {
			continue
		}
		victim, _, _ := strings.Cut(ref.rec, ".")
		st := x.stats(victim)
		st.Foreign++
		st.ForeignBy = proposer
		e.log.Warn("refused an online signing session that names another initiator's presignature: only the signer that made a presignature may spend it",
			"proposer", string(proposer), "presignature", shortHex(id), "pool", victim)
		return fmt.Errorf("%w: %s proposed presignature %s, which belongs to another initiator's pool; %s spends only presignatures it made (kqnode presign on %s)",
			ErrNotYourPresignature, proposer, shortHex(id), proposer, proposer)
	}
	return nil
}

// release undoes reserve for IDs that were not consumed.
func (e *Engine) release(ids []string) {
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		delete(x.inUse, id)
	}
}

// consume uses the presignatures ids of pool and returns their encodings,
// in the order of ids. Before it returns them it has marked their slots in
// their batches' ledgers, durably, in the HSM: whatever happens next — a
// crash, a restore of the store from a backup, a co-signer that kept its
// copy — they can never be used again. ids must all be held and unused, or
// nothing is consumed and the error wraps ErrPresignatureUsed. Once consume
// has taken ids out of the index they are gone for this party even if it
// then fails (an error marking the ledger leaves them unusable until a
// restart, when the ledger tells). The caller clears the returned encodings.
func (e *Engine) consume(ctx context.Context, pool string, ids []string, reserved bool) ([]gg20.Stored, error) {
	led, err := e.ledger()
	if err != nil {
		return nil, err
	}
	x := e.presigs
	x.mu.Lock()
	if err := e.loadPool(ctx, pool); err != nil {
		x.mu.Unlock()
		return nil, err
	}
	seen := make(map[string]bool, len(ids))
	byRec := make(map[string][]int) // record → positions in ids
	for i, id := range ids {
		ref, ok := x.where[id]
		if !ok || !strings.HasPrefix(ref.rec, pool+".") || seen[id] || (x.inUse[id] && !reserved) {
			x.mu.Unlock()
			return nil, fmt.Errorf("%w: %s holds no unused presignature %s in this pool", ErrPresignatureUsed, e.net.Self(), shortHex(id))
		}
		seen[id] = true
		byRec[ref.rec] = append(byRec[ref.rec], i)
	}
	// Take them out of the index now: from here on no other session can
	// pick them, and they are never put back.
	refs := make([]presigRef, len(ids))
	for i, id := range ids {
		refs[i] = x.where[id]
		delete(x.where, id)
		delete(x.inUse, id)
	}
	x.pools[pool] = slices.DeleteFunc(x.pools[pool], func(id string) bool { return seen[id] })
	x.stats(pool).Used += uint64(len(ids))
	x.mu.Unlock()

	out := make([]gg20.Stored, len(ids))
	fail := func(err error) ([]gg20.Stored, error) {
		clearStored(out)
		return nil, err
	}
	recs := make([]string, 0, len(byRec))
	for rec := range byRec {
		recs = append(recs, rec)
	}
	slices.Sort(recs)
	var emptied []string
	for _, rec := range recs {
		at := byRec[rec]
		data, b, err := e.readBatch(ctx, rec)
		if err != nil {
			return fail(err)
		}
		slots := make([]int, len(at))
		for k, i := range at {
			slot := refs[i].slot
			if slot >= len(b.entries) || b.entries[slot].id != ids[i] {
				clear(data)
				return fail(fmt.Errorf("%w: presignature %s is not where the index says (batch %s slot %d)", ErrPresignatureUsed, shortHex(ids[i]), rec, slot))
			}
			slots[k] = slot
			// A copy of the encoding, decoded only as far as signing needs
			// (gg20.Stored): the record was sealed by this party's HSM.
			out[i] = gg20.Stored(slices.Clone(b.entries[slot].enc))
		}
		clear(data)
		// The durable step: after this no copy of the store can make
		// these presignatures usable again.
		if _, err := led.UseLedger(ctx, rec, slots); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w: the ledger of batch %s is gone from the HSM (%v)", ErrPresignatureUsed, rec, err)
			} else {
				err = fmt.Errorf("%w: %s could not mark presignatures of batch %s used in its HSM ledger: %v", ErrPresignatureUsed, e.net.Self(), rec, err)
			}
			return fail(err)
		}
		x.mu.Lock()
		x.left[rec] -= len(at)
		if x.left[rec] <= 0 {
			delete(x.left, rec)
			emptied = append(emptied, rec)
		}
		x.mu.Unlock()
	}
	if len(emptied) > 0 {
		e.background(func(ctx context.Context) {
			for _, rec := range emptied {
				if err := e.retireBatch(ctx, rec); err != nil {
					e.log.Warn("used-up presignature batch not deleted yet; it is retried at the next start", "batch", rec, "err", err.Error())
				}
			}
		})
	}
	return out, nil
}

// retireBatch deletes a batch that can no longer be used: its record first
// (overwritten, then unlinked), then its ledger. A crash between the two
// leaves a ledger without a record, which loadPool removes.
func (e *Engine) retireBatch(ctx context.Context, rec string) error {
	if err := e.cfg.Store.Delete(ctx, kindPresig, rec); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tss: delete presignature batch %s: %w", rec, err)
	}
	if e.cfg.Ledger == nil {
		return nil
	}
	if err := e.cfg.Ledger.DeleteLedger(ctx, rec); err != nil {
		return fmt.Errorf("tss: destroy the ledger of presignature batch %s: %w", rec, err)
	}
	return nil
}

// background runs f on one of the engine's goroutines (Run waits for it),
// or right away when the engine is not running.
func (e *Engine) background(f func(ctx context.Context)) {
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		f(context.Background())
		return
	}
	ctx := e.runCtx
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		f(context.WithoutCancel(ctx))
	}()
}

// discard uses up presignatures that are not held by every signer (after a
// crash or a restore from backup), or that a drain empties, so they are
// never used; reserved says the caller reserved them.
func (e *Engine) discard(ctx context.Context, pool string, ids []string, reserved bool) error {
	sts, err := e.consume(ctx, pool, ids, reserved)
	if err != nil {
		return err
	}
	clearStored(sts)
	x := e.presigs
	x.mu.Lock()
	s := x.stats(pool)
	s.Used -= uint64(len(ids))
	s.Discarded += uint64(len(ids))
	x.mu.Unlock()
	return nil
}

// retireKeyPresignatures deletes every stored presignature of keyID that was
// made under an epoch other than keep (keep 0: every epoch). After a reshare
// commits, presignatures of the old committee's shares must never be used:
// their batches' records and ledgers are deleted, so even a restored copy
// of the store cannot bring them back. It returns how many it deleted.
// The returned events describe the deleted batches, also on error.
func (e *Engine) retireKeyPresignatures(ctx context.Context, keyID string, keep uint64) (int, []PresignatureEvent, error) {
	recs, err := e.cfg.Store.List(ctx, kindPresig)
	if err != nil {
		return 0, nil, fmt.Errorf("tss: list presignatures: %w", err)
	}
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	var evs []PresignatureEvent
	for _, rec := range recs {
		data, b, err := e.readBatch(ctx, rec)
		if errors.Is(err, errOldBatch) {
			if err := e.retireBatch(ctx, rec); err != nil {
				return n, evs, err
			}
			continue
		}
		if err != nil {
			return n, evs, err
		}
		clear(data)
		if b.keyID != keyID || b.epoch == keep {
			continue
		}
		if err := e.retireBatch(ctx, rec); err != nil {
			return n, evs, err
		}
		for _, en := range b.entries {
			if ref, ok := x.where[en.id]; ok && ref.rec == rec {
				delete(x.where, en.id)
				delete(x.inUse, en.id)
			}
		}
		pool, _, _ := strings.Cut(rec, ".")
		x.pools[pool] = slices.DeleteFunc(x.pools[pool], func(id string) bool {
			_, ok := x.where[id]
			return !ok
		})
		delete(x.left, rec)
		n += len(b.entries)
		evs = append(evs, PresignatureEvent{Change: PresignaturesRetired, Pool: pool, Spec: PoolSpec{KeyID: b.keyID}, Epoch: b.epoch,
			IDs: batchIDs(b), Reason: "a reshare of the key committed"})
	}
	return n, evs, nil
}

// batchIDs lists the IDs of a batch's presignatures.
func batchIDs(b *batch) []string {
	ids := make([]string, len(b.entries))
	for i, en := range b.entries {
		ids[i] = en.id
	}
	return ids
}

// readyIDs lists the unreserved presignatures of pool and, with reserve,
// reserves them all (as reserve does for a few).
func (e *Engine) readyIDs(ctx context.Context, pool string, reserve bool) ([]string, error) {
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := e.loadPool(ctx, pool); err != nil {
		return nil, err
	}
	var out []string
	for _, id := range x.pools[pool] {
		if !x.inUse[id] {
			out = append(out, id)
			if reserve {
				x.inUse[id] = true
			}
		}
	}
	return out, nil
}

func shortHex(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}
