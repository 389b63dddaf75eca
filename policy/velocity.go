package policy

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"
)

// Velocity limits.
const (
	// DefaultRetention is how long a Velocity made with retention 0 keeps
	// spends: 31 days, enough for monthly limits.
	DefaultRetention = 31 * 24 * time.Hour
	// MaxRetention bounds a Velocity's retention.
	MaxRetention = 366 * 24 * time.Hour
	// MaxVelocityEvents bounds the spends a Velocity holds. When it is
	// full, Record fails and Authorize refuses (fail closed) until old
	// spends age out.
	MaxVelocityEvents = 1 << 18
)

// velocityMagic opens the binary encoding; VelocityVersion follows it.
const velocityMagic = "KQVELOCITY"

// VelocityVersion is the version of the binary encoding (FORMAT.md).
const VelocityVersion = 1

// Velocity is a site's own record of recent spending: which key sent how
// much of which asset to which destination, and when. Rules read it through
// the velocity variable (velocity.spent, velocity.spent_to) to limit
// spending per key and per destination over a window.
//
// A site keeps one Velocity for all its keys, adds every intent it agrees to
// sign (Policy.Authorize does so while the decision is made, so two
// concurrent requests cannot both use the same allowance), and persists it
// sealed after each change (MarshalBinary) so that a restart does not reset
// its limits. The zero value is an empty record that keeps spends for
// DefaultRetention. A Velocity is safe for concurrent use.
type Velocity struct {
	mu        sync.Mutex
	retention time.Duration
	events    []spendEvent   // ordered by time
	recorded  map[string]int // spends held per intent hash || key ID
}

type spendEvent struct {
	at          int64 // Unix nanoseconds
	intent      [32]byte
	keyID       string
	asset       string
	destination string
	amount      *big.Int
}

// NewVelocity returns an empty record that keeps spends for retention
// (DefaultRetention if 0, at most MaxRetention). Rules may ask for windows up
// to the retention.
func NewVelocity(retention time.Duration) (*Velocity, error) {
	if retention == 0 {
		retention = DefaultRetention
	}
	if retention < time.Second || retention > MaxRetention {
		return nil, fmt.Errorf("%w: retention %s outside 1s..%s", ErrVelocity, retention, MaxRetention)
	}
	return &Velocity{retention: retention, recorded: map[string]int{}}, nil
}

// Retention returns how long spends are kept.
func (v *Velocity) Retention() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.initLocked()
	return v.retention
}

// Len returns the number of spends held.
func (v *Velocity) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.events)
}

// Record adds the spends of a plan the site agreed to sign, at time at,
// and drops spends older than the retention. Recording the same intent for
// the same key again adds nothing, so a retried signing session is counted
// once.
func (v *Velocity) Record(plan *Plan, at time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.recordLocked(plan, at)
}

// initLocked makes the zero value usable.
func (v *Velocity) initLocked() {
	if v.retention == 0 {
		v.retention = DefaultRetention
	}
	if v.recorded == nil {
		v.recorded = map[string]int{}
	}
}

func (v *Velocity) recordLocked(plan *Plan, at time.Time) error {
	v.initLocked()
	if plan == nil {
		return fmt.Errorf("%w: no plan to record", ErrVelocity)
	}
	now := at.UnixNano()
	v.pruneLocked(now)
	id := string(plan.IntentHash[:]) + plan.Key.ID
	if v.recorded[id] > 0 {
		return nil
	}
	if len(v.events)+len(plan.Spends) > MaxVelocityEvents {
		return fmt.Errorf("%w: full (%d spends within %s); refusing to sign more until old spends expire", ErrVelocity, len(v.events), v.retention)
	}
	for _, s := range plan.Spends {
		e := spendEvent{at: now, intent: plan.IntentHash, keyID: plan.Key.ID, asset: s.Asset, destination: s.Destination, amount: new(big.Int).Set(s.Amount)}
		// Keep the order by time even if the clock went back.
		i, _ := slices.BinarySearchFunc(v.events, now, func(e spendEvent, t int64) int {
			if e.at <= t {
				return -1
			}
			return 1
		})
		v.events = slices.Insert(v.events, i, e)
		v.recorded[id]++
	}
	return nil
}

// spendID names the intent and key of a spend in Velocity.recorded.
func (e *spendEvent) spendID() string { return string(e.intent[:]) + e.keyID }

// pruneLocked drops spends older than the retention before now.
func (v *Velocity) pruneLocked(now int64) {
	cut := now - int64(v.retention)
	i := 0
	for i < len(v.events) && v.events[i].at <= cut {
		id := v.events[i].spendID()
		if v.recorded[id]--; v.recorded[id] <= 0 {
			delete(v.recorded, id)
		}
		v.events[i] = spendEvent{}
		i++
	}
	// Reslicing keeps pruning O(dropped); append reallocates the array once
	// it is full, leaving the dropped prefix behind.
	v.events = v.events[i:]
}

// Spent returns what key keyID sent of asset within window before now.
// Spends recorded after now (a clock that went back) are counted too.
func (v *Velocity) Spent(keyID, asset string, window time.Duration, now time.Time) (*big.Int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sumLocked(func(e *spendEvent) bool { return e.keyID == keyID && e.asset == asset }, window, now)
}

// SpentTo returns what all keys sent of asset to destination within window
// before now.
func (v *Velocity) SpentTo(asset, destination string, window time.Duration, now time.Time) (*big.Int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sumLocked(func(e *spendEvent) bool { return e.asset == asset && e.destination == destination }, window, now)
}

func (v *Velocity) sumLocked(match func(*spendEvent) bool, window time.Duration, now time.Time) (*big.Int, error) {
	v.initLocked()
	if window <= 0 || window > v.retention {
		return nil, fmt.Errorf("%w: window %s outside (0, %s], the record's retention", ErrVelocity, window, v.retention)
	}
	cut := now.UnixNano() - int64(window)
	i, _ := slices.BinarySearchFunc(v.events, cut, func(e spendEvent, t int64) int {
		if e.at <= t {
			return -1
		}
		return 1
	})
	sum := new(big.Int)
	for j := i; j < len(v.events); j++ {
		if match(&v.events[j]) {
			sum.Add(sum, v.events[j].amount)
		}
	}
	return sum, nil
}

// MarshalBinary encodes the record (FORMAT.md, "Velocity record").
func (v *Velocity) MarshalBinary() ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.initLocked()
	b := append([]byte(velocityMagic), VelocityVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(v.retention))
	b = binary.BigEndian.AppendUint32(b, uint32(len(v.events)))
	for _, e := range v.events {
		b = binary.BigEndian.AppendUint64(b, uint64(e.at))
		b = append(b, e.intent[:]...)
		b = append(b, byte(len(e.keyID)))
		b = append(b, e.keyID...)
		b = append(b, byte(len(e.asset)))
		b = append(b, e.asset...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.destination)))
		b = append(b, e.destination...)
		amt := e.amount.Bytes()
		b = append(b, byte(len(amt)))
		b = append(b, amt...)
	}
	return b, nil
}

// UnmarshalBinary replaces the record with a decoded one. It refuses
// anything MarshalBinary cannot produce: a bad magic or version, a
// retention out of range, too many spends, spends out of time order, empty
// or oversized fields, amounts that are not positive and minimal, trailing
// bytes.
func (v *Velocity) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if string(r.next(len(velocityMagic))) != velocityMagic {
		return fmt.Errorf("%w: not a velocity record", ErrVelocity)
	}
	if ver := r.u8(); ver != VelocityVersion {
		return fmt.Errorf("%w: version %d, this build reads version %d", ErrVelocity, ver, VelocityVersion)
	}
	retention := time.Duration(r.u64())
	n := r.u32()
	if r.err != nil {
		return fmt.Errorf("%w: truncated", ErrVelocity)
	}
	if retention < time.Second || retention > MaxRetention {
		return fmt.Errorf("%w: retention %s out of range", ErrVelocity, retention)
	}
	if n > MaxVelocityEvents {
		return fmt.Errorf("%w: %d spends, at most %d", ErrVelocity, n, MaxVelocityEvents)
	}
	// Each spend takes at least 8+32+1+1+1+2+1+1+1 = 48 bytes.
	if uint64(n)*48 > uint64(len(b)) {
		return fmt.Errorf("%w: %d spends cannot fit in %d bytes", ErrVelocity, n, len(b))
	}
	events := make([]spendEvent, 0, n)
	for i := uint32(0); i < n; i++ {
		var e spendEvent
		e.at = int64(r.u64())
		copy(e.intent[:], r.next(32))
		e.keyID = string(r.next(int(r.u8())))
		e.asset = string(r.next(int(r.u8())))
		e.destination = string(r.next(int(binaryU16(&r))))
		amt := r.next(int(r.u8()))
		if r.err != nil {
			return fmt.Errorf("%w: truncated at spend %d", ErrVelocity, i)
		}
		if e.keyID == "" || e.asset == "" || e.destination == "" || len(amt) == 0 || amt[0] == 0 {
			return fmt.Errorf("%w: spend %d has an empty field or a non-minimal amount", ErrVelocity, i)
		}
		if i > 0 && e.at < events[i-1].at {
			return fmt.Errorf("%w: spend %d is out of time order", ErrVelocity, i)
		}
		e.amount = new(big.Int).SetBytes(amt)
		events = append(events, e)
	}
	if r.off != len(b) {
		return fmt.Errorf("%w: %d bytes after the last spend", ErrVelocity, len(b)-r.off)
	}
	recorded := make(map[string]int, len(events))
	for i := range events {
		recorded[events[i].spendID()]++
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.retention, v.events, v.recorded = retention, events, recorded
	return nil
}

func binaryU16(r *reader) uint16 {
	if b := r.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// velocityView is the velocity variable of one evaluation: the record as
// of the evaluation's clock, for the plan's key, plus the plan's own
// spends. locked is set when the caller holds v.mu (Policy.Authorize).
type velocityView struct {
	v      *Velocity
	locked bool
	now    time.Time
	plan   *Plan
}

// spent is velocity.spent(asset, window): this key's spends of asset in
// the window, this request included.
func (w *velocityView) spent(asset string, window time.Duration) (*big.Int, error) {
	sum, err := w.sum(func(e *spendEvent) bool { return e.keyID == w.plan.Key.ID && e.asset == asset }, window)
	if err != nil {
		return nil, err
	}
	for _, s := range w.plan.Spends {
		if s.Asset == asset {
			sum.Add(sum, s.Amount)
		}
	}
	return sum, nil
}

// spentTo is velocity.spent_to(asset, destination, window): every key's
// spends of asset to destination in the window, this request included.
func (w *velocityView) spentTo(asset, destination string, window time.Duration) (*big.Int, error) {
	sum, err := w.sum(func(e *spendEvent) bool { return e.asset == asset && e.destination == destination }, window)
	if err != nil {
		return nil, err
	}
	for _, s := range w.plan.Spends {
		if s.Asset == asset && s.Destination == destination {
			sum.Add(sum, s.Amount)
		}
	}
	return sum, nil
}

// size is the number of spends in the record.
func (w *velocityView) size() int {
	if w.v == nil {
		return 0
	}
	if !w.locked {
		w.v.mu.Lock()
		defer w.v.mu.Unlock()
	}
	return len(w.v.events)
}

func (w *velocityView) sum(match func(*spendEvent) bool, window time.Duration) (*big.Int, error) {
	if w.v == nil {
		if window <= 0 || window > MaxRetention {
			return nil, fmt.Errorf("%w: window %s outside (0, %s]", ErrVelocity, window, MaxRetention)
		}
		return new(big.Int), nil
	}
	if !w.locked {
		w.v.mu.Lock()
		defer w.v.mu.Unlock()
	}
	// A spend already recorded for this intent is not counted twice.
	intent := w.plan.IntentHash
	return w.v.sumLocked(func(e *spendEvent) bool { return e.intent != intent && match(e) }, window, w.now)
}
