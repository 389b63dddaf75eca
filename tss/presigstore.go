package tss

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/keyquorum/keyquorum/tss/gg20"
)

// Presignatures are stored in batches: one sealed record per presigning
// session, holding the presignatures that session made. The record's id is
// "<pool>.<batch>", where pool is a hash of what the presignatures are bound
// to (key, epoch, signers, derivation path) and batch is random. Using a
// presignature rewrites its batch record without it, atomically, or deletes
// the record when it becomes empty; the deletions of one call share one
// directory sync. The cost is per record touched, not per signature.
//
// Record layout (big-endian):
//
//	"KQPB" | version uint8 (1) | count uint32 | count × { id [32] | length uint32 | gg20 presignature }
const (
	kindPresig       = "presig"
	presigBatchMagic = "KQPB"
	presigBatchVer   = 1
)

// PoolSpec names a set of interchangeable presignatures: same key, same
// signers, same derivation path. Presignatures are bound to all three when
// they are made.
type PoolSpec struct {
	// KeyID names the key.
	KeyID string
	// Signers are the parties that sign together, sorted.
	Signers []PartyID
	// Path is the BIP-32 derivation path ("" for the root key).
	Path string
}

// poolKey returns the pool's 16-hex-digit name for key epoch.
func (s PoolSpec) poolKey(epoch uint64) string {
	h := sha256.New()
	h.Write([]byte("keyquorum/presig-pool/v1"))
	writeLenPrefixed(h, []byte(s.KeyID))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], epoch)
	h.Write(b[:])
	for _, p := range s.Signers {
		writeLenPrefixed(h, []byte(p))
	}
	writeLenPrefixed(h, []byte(s.Path))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// presigIndex tracks which presignatures this party holds, by pool, without
// keeping any secret in memory: it only knows IDs and which batch record
// holds each one.
type presigIndex struct {
	mu     sync.Mutex
	loaded map[string]bool              // pool keys whose records were read
	pools  map[string][]string          // pool key → presignature IDs (hex), oldest first
	where  map[string]string            // presignature ID → batch record id
	inUse  map[string]bool              // IDs reserved by a running online session
	making map[string]int               // pool key → presignatures being made
	counts map[string]*PresignPoolStats // pool key → counters
}

// PresignPoolStats counts what happened to a pool's presignatures since the
// engine started.
type PresignPoolStats struct {
	// Made counts presignatures made and stored.
	Made uint64 `json:"made"`
	// Used counts presignatures consumed by signing (including burnt ones).
	Used uint64 `json:"used"`
	// Discarded counts presignatures dropped by reconciliation.
	Discarded uint64 `json:"discarded"`
}

func newPresigIndex() *presigIndex {
	return &presigIndex{
		loaded: make(map[string]bool), pools: make(map[string][]string),
		where: make(map[string]string), inUse: make(map[string]bool), making: make(map[string]int),
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

// load reads this pool's batch records once, to learn the IDs they hold.
// Caller holds x.mu.
func (e *Engine) loadPool(ctx context.Context, pool string) error {
	x := e.presigs
	if x.loaded[pool] {
		return nil
	}
	ids, err := e.cfg.Store.List(ctx, kindPresig)
	if err != nil {
		return fmt.Errorf("tss: list presignatures: %w", err)
	}
	for _, rec := range ids {
		if !strings.HasPrefix(rec, pool+".") {
			continue
		}
		data, entries, err := e.readBatch(ctx, rec)
		if err != nil {
			return err
		}
		for _, en := range entries {
			x.pools[pool] = append(x.pools[pool], en.id)
			x.where[en.id] = rec
		}
		clear(data)
	}
	x.loaded[pool] = true
	return nil
}

// readBatch unseals one batch record. The entries point into data; the
// caller clears data when done.
func (e *Engine) readBatch(ctx context.Context, rec string) (data []byte, entries []batchEntry, err error) {
	data, _, err = e.cfg.Store.Get(ctx, kindPresig, rec)
	if err != nil {
		return nil, nil, fmt.Errorf("tss: read presignature batch %s: %w", rec, err)
	}
	entries, err = parseBatch(data)
	if err != nil {
		clear(data)
		return nil, nil, fmt.Errorf("tss: presignature batch %s: %w", rec, err)
	}
	return data, entries, nil
}

// batchEntry is one presignature in a batch record: its public ID and its
// encoding, which is only decoded (and checked) when the presignature is
// used. Keeping entries raw lets using one presignature cost one decode, not
// one per presignature in the batch.
type batchEntry struct {
	id  string // hex
	enc []byte
}

func parseBatch(b []byte) ([]batchEntry, error) {
	if len(b) < 9 || string(b[:4]) != presigBatchMagic || b[4] != presigBatchVer {
		return nil, errors.New("not a presignature batch")
	}
	n := binary.BigEndian.Uint32(b[5:])
	b = b[9:]
	if n > 1<<16 {
		return nil, errors.New("batch too large")
	}
	out := make([]batchEntry, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(b) < 36 {
			return nil, errors.New("truncated batch")
		}
		id := hex.EncodeToString(b[:32])
		l := binary.BigEndian.Uint32(b[32:])
		if uint64(l) > uint64(len(b)-36) {
			return nil, errors.New("truncated batch")
		}
		out = append(out, batchEntry{id: id, enc: b[36 : 36+l]})
		b = b[36+l:]
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes in batch")
	}
	return out, nil
}

func encodeEntries(entries []batchEntry) []byte {
	size := 9
	for _, e := range entries {
		size += 36 + len(e.enc)
	}
	out := make([]byte, 0, size)
	out = append(out, presigBatchMagic...)
	out = append(out, presigBatchVer)
	out = binary.BigEndian.AppendUint32(out, uint32(len(entries)))
	for _, e := range entries {
		id, _ := hex.DecodeString(e.id)
		out = append(out, id...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(e.enc)))
		out = append(out, e.enc...)
	}
	return out
}

func encodeBatch(pss []*gg20.Presignature) ([]byte, error) {
	entries := make([]batchEntry, 0, len(pss))
	defer func() {
		for _, e := range entries {
			clear(e.enc)
		}
	}()
	for _, ps := range pss {
		b, err := ps.MarshalBinary()
		if err != nil {
			return nil, err
		}
		id := ps.ID()
		entries = append(entries, batchEntry{id: hex.EncodeToString(id[:]), enc: b})
	}
	return encodeEntries(entries), nil
}

// storeBatch seals a new batch for pool and indexes it.
func (e *Engine) storeBatch(ctx context.Context, pool string, pss []*gg20.Presignature) error {
	var rnd [8]byte
	if _, err := e.cfg.Rand.Read(rnd[:]); err != nil {
		return err
	}
	rec := pool + "." + hex.EncodeToString(rnd[:])
	data, err := encodeBatch(pss)
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
	if err := e.cfg.Store.Put(ctx, kindPresig, rec, 1, data); err != nil {
		return fmt.Errorf("tss: store presignatures: %w", err)
	}
	for _, ps := range pss {
		id := ps.ID()
		hid := hex.EncodeToString(id[:])
		x.pools[pool] = append(x.pools[pool], hid)
		x.where[hid] = rec
	}
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

// release undoes reserve for IDs that were not consumed.
func (e *Engine) release(ids []string) {
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		delete(x.inUse, id)
	}
}

// consume removes the presignatures ids of pool from the store, durably,
// and returns their encodings, in the order of ids. After consume returns,
// no copy of them exists on disk: whatever happens next, they can never be
// used again. ids must all be present, or nothing is consumed and the error
// wraps ErrPresignatureUsed. The caller clears the returned encodings.
func (e *Engine) consume(ctx context.Context, pool string, ids []string, reserved bool) ([]gg20.Stored, error) {
	x := e.presigs
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := e.loadPool(ctx, pool); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(ids))
	byRec := make(map[string][]string)
	for _, id := range ids {
		rec, ok := x.where[id]
		if !ok || !strings.HasPrefix(rec, pool+".") || seen[id] || (x.inUse[id] && !reserved) {
			return nil, fmt.Errorf("%w: %s holds no unused presignature %s in this pool", ErrPresignatureUsed, e.net.Self(), shortHex(id))
		}
		seen[id] = true
		byRec[rec] = append(byRec[rec], id)
	}
	taken := make(map[string]gg20.Stored, len(ids))
	var emptied []string
	wipeAll := func() {
		for _, st := range taken {
			clear(st)
		}
	}
	for rec, want := range byRec {
		data, entries, err := e.readBatch(ctx, rec)
		if err != nil {
			wipeAll()
			return nil, err
		}
		var keep []batchEntry
		for _, en := range entries {
			if !slices.Contains(want, en.id) {
				keep = append(keep, en)
				continue
			}
			// Keep a copy of the encoding; it is decoded only as far as
			// signing needs (gg20.Stored), because the record was sealed by
			// this party's HSM and cannot have changed.
			taken[en.id] = gg20.Stored(slices.Clone(en.enc))
		}
		if len(keep) == 0 {
			clear(data)
			emptied = append(emptied, rec)
			continue
		}
		rest := encodeEntries(keep)
		clear(data)
		err = e.cfg.Store.Put(ctx, kindPresig, rec, 1, rest)
		clear(rest)
		if err != nil {
			wipeAll()
			return nil, fmt.Errorf("tss: consume presignatures: %w", err)
		}
	}
	if len(emptied) > 0 {
		if err := e.cfg.Store.DeleteMany(ctx, kindPresig, emptied); err != nil {
			wipeAll()
			return nil, fmt.Errorf("tss: consume presignatures: %w", err)
		}
	}
	// From here the presignatures are gone from disk.
	out := make([]gg20.Stored, len(ids))
	for i, id := range ids {
		out[i] = taken[id]
		delete(x.where, id)
		delete(x.inUse, id)
	}
	x.pools[pool] = slices.DeleteFunc(x.pools[pool], func(id string) bool { return seen[id] })
	x.stats(pool).Used += uint64(len(ids))
	for i, st := range out {
		if st == nil {
			wipeAll()
			return nil, fmt.Errorf("%w: presignature %s was indexed but not stored", ErrPresignatureUsed, shortHex(ids[i]))
		}
	}
	return out, nil
}

// discard removes presignatures that are not held by every signer (after a
// crash or a restore from backup), so they are never used.
func (e *Engine) discard(ctx context.Context, pool string, ids []string) error {
	sts, err := e.consume(ctx, pool, ids, false)
	if err != nil {
		return err
	}
	for _, st := range sts {
		clear(st)
	}
	x := e.presigs
	x.mu.Lock()
	s := x.stats(pool)
	s.Used -= uint64(len(ids))
	s.Discarded += uint64(len(ids))
	x.mu.Unlock()
	return nil
}

// readyIDs lists the unreserved presignatures of pool.
func (e *Engine) readyIDs(ctx context.Context, pool string) ([]string, error) {
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
