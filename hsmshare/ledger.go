package hsmshare

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// A Ledger is a short row of one-time slots whose "used" marks live inside
// the token, so that no change to files on disk — a restored backup, a copy
// kept by someone — can make a used slot unused again. keyquorum gives each
// stored batch of GG20 presignatures its own ledger and marks a
// presignature's slot before it releases a signature share made with it.
//
// A ledger is a token object whose CKA_LABEL carries the marks:
// "kql <slots> <hex bitmap>", for example "kql 32 0f000000" when slots 0 to
// 3 of 32 are used (slot i is bit i%8 of byte i/8). The label is the one
// attribute PKCS#11 lets an application change on any storage object whose
// CKA_MODIFIABLE is true; its form keeps it under 32 bytes, a limit some
// tokens put on labels. Marking is one C_SetAttributeValue: the token stores
// it like any change to a token object, so a crash of this process cannot
// undo it. Reading the marks needs the user to be logged in, and so does
// changing them: only a holder of the PIN could ever unmark a slot.
//
// The object is a private secret key that can do nothing: a 128-bit AES key
// generated in the token, sensitive, not extractable, with every usage
// attribute false, whose CKA_ID is "kq-ledger:" followed by the ledger's
// name. Ledgers were private data objects (CKO_DATA) before; NSS softoken
// keeps data objects only as session objects, public ones at that, and
// refuses token or private ones (CKR_ATTRIBUTE_VALUE_INVALID), while a
// private token secret key is what every token keyquorum can use must hold
// anyway (the seal key is one). Ledgers of the earlier form are still found,
// marked and destroyed; new ones always take the key form. FORMAT.md,
// "Ledgers", has both layouts.
//
// What this cannot protect against: a token whose own storage is restored
// from a backup. SoftHSM2 keeps its tokens as files (its tokendir) and NSS
// softoken in its database directory; restoring those restores the ledgers
// with them. Hardware HSMs keep objects in their own storage, out of reach
// of a file restore.
//
// A Ledger is safe for concurrent use within one process. Two processes must
// not mark the same ledger at once; a [Store]'s lock keeps ledgers of one
// store to one process.
type Ledger struct {
	tok   *Token
	name  string
	slots int
	obj   pkcs11.ObjectHandle

	mu sync.Mutex
}

// MaxLedgerSlots is the largest number of slots a ledger has.
const MaxLedgerSlots = 64

// ledgerIDPrefix starts the CKA_ID of a ledger object; the name follows.
const ledgerIDPrefix = "kq-ledger:"

// ledgerKeyLen is the CKA_VALUE_LEN of a ledger object (an AES-128 key).
const ledgerKeyLen = 16

// legacyLedgerApplication is the CKA_APPLICATION of ledgers of the earlier
// form, private data objects whose CKA_VALUE is the name.
const legacyLedgerApplication = "keyquorum ledger v1"

// ledgerLabelPrefix starts the label that holds a ledger's marks.
const ledgerLabelPrefix = "kql "

// maxLedgerName bounds a ledger's name (its CKA_VALUE).
const maxLedgerName = 512

// Errors of ledgers.
var (
	// ErrSlotUsed means a ledger slot to be marked was already marked; the
	// ledger is unchanged.
	ErrSlotUsed = errors.New("hsmshare: ledger slot already used")
	// ErrLedgerNotFound means no ledger of that name exists on the token.
	// It wraps ErrNotFound, so errors.Is(err, fs.ErrNotExist) also holds.
	ErrLedgerNotFound = fmt.Errorf("hsmshare: ledger not found: %w", ErrNotFound)
	// ErrLedgerUnsupported means the token cannot keep a ledger: it refuses
	// to create private data objects or to change their label.
	ErrLedgerUnsupported = errors.New("hsmshare: token cannot keep a ledger")
	// ErrLedgerCorrupted means a ledger object's label is not in the form
	// this package writes; something other than keyquorum changed it.
	ErrLedgerCorrupted = errors.New("hsmshare: ledger object changed outside keyquorum")
)

func validLedgerName(name string) error {
	if name == "" || len(name) > maxLedgerName {
		return fmt.Errorf("%w: ledger name must be 1 to %d bytes", ErrInvalidName, maxLedgerName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: ledger name must be printable ASCII without spaces", ErrInvalidName)
		}
	}
	return nil
}

// ledgerKeyTemplate finds the ledger object of name.
func ledgerKeyTemplate(name string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(ledgerIDPrefix+name)),
	}
}

// legacyLedgerTemplate finds the ledger of name in its earlier form.
func legacyLedgerTemplate(name string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, legacyLedgerApplication),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte(name)),
	}
}

// newLedgerTemplate generates a ledger object. As with seal keys, every
// usage attribute is spelled out (false) and CKA_CLASS and CKA_KEY_TYPE are
// left to the mechanism.
func newLedgerTemplate(name, label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, ledgerKeyLen),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(ledgerIDPrefix+name)),
	}
}

// ledgerReqs are what a new ledger object must be: behind login and kept
// on the token, so that only a holder of the PIN can change its marks.
var ledgerReqs = []requirement{
	boolIs("CKA_TOKEN", true),
	boolIs("CKA_PRIVATE", true),
	boolIs("CKA_MODIFIABLE", true),
}

// findLedger returns the objects of the ledger name, in either form.
func (t *Token) findLedger(sh pkcs11.SessionHandle, name string) ([]pkcs11.ObjectHandle, error) {
	hs, err := t.findObjects(sh, ledgerKeyTemplate(name))
	if err != nil {
		return nil, fmt.Errorf("hsmshare: search %s for ledger %q: %w", t.describe(), name, err)
	}
	old, err := t.findObjects(sh, legacyLedgerTemplate(name))
	if err != nil {
		return nil, fmt.Errorf("hsmshare: search %s for ledger %q: %w", t.describe(), name, err)
	}
	return append(hs, old...), nil
}

// encodeMarks renders marks as a ledger label.
func encodeMarks(slots int, marks []byte) string {
	return ledgerLabelPrefix + strconv.Itoa(slots) + " " + hex.EncodeToString(marks)
}

// decodeMarks parses a ledger label written by encodeMarks and returns its
// slot count and marks. want, when not 0, is the slot count the ledger must
// have.
func decodeMarks(label string, want int) (int, []byte, error) {
	rest, ok := strings.CutPrefix(label, ledgerLabelPrefix)
	if !ok {
		return 0, nil, ErrLedgerCorrupted
	}
	n, hx, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, nil, ErrLedgerCorrupted
	}
	slots, err := strconv.Atoi(n)
	if err != nil || slots < 1 || slots > MaxLedgerSlots || (want != 0 && slots != want) {
		return 0, nil, ErrLedgerCorrupted
	}
	marks, err := hex.DecodeString(hx)
	if err != nil || len(marks) != (slots+7)/8 {
		return 0, nil, ErrLedgerCorrupted
	}
	// Bits past the last slot are never set by this package.
	if r := slots % 8; r != 0 && marks[len(marks)-1]>>r != 0 {
		return 0, nil, ErrLedgerCorrupted
	}
	return slots, marks, nil
}

// CreateLedger creates a ledger named name with slots unused slots (1 to
// [MaxLedgerSlots]). It refuses ([ErrKeyExists]) when a ledger of that name
// exists, and checks right away that the token lets the ledger be marked,
// so a token that cannot keep one fails here ([ErrLedgerUnsupported]), not
// when a slot is used.
func (t *Token) CreateLedger(ctx context.Context, name string, slots int) (*Ledger, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLedgerName(name); err != nil {
		return nil, err
	}
	if slots < 1 || slots > MaxLedgerSlots {
		return nil, fmt.Errorf("hsmshare: ledger %q: %d slots; a ledger has 1 to %d", name, slots, MaxLedgerSlots)
	}
	if err := t.requireMechanism(pkcs11.CKM_AES_KEY_GEN, pkcs11.CKF_GENERATE, "create presignature ledgers"); err != nil {
		return nil, err
	}
	t.createMu.Lock()
	defer t.createMu.Unlock()
	l := &Ledger{tok: t, name: name, slots: slots}
	label := encodeMarks(slots, make([]byte, (slots+7)/8))
	err := t.pool.do(ctx, OpLedgerCreate, func(sh pkcs11.SessionHandle) error {
		hs, err := t.findLedger(sh, name)
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			return fmt.Errorf("%w: ledger %q exists on %s", ErrKeyExists, name, t.describe())
		}
		obj, err := t.mod.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, newLedgerTemplate(name, label))
		if err != nil {
			return fmt.Errorf("%w: %s refused to generate the key object of ledger %q: %v", ErrLedgerUnsupported, t.describe(), name, err)
		}
		if err := t.checkKey(sh, obj, fmt.Sprintf("ledger %q on %s", name, t.describe()), ledgerReqs); err != nil {
			_ = t.mod.ctx.DestroyObject(sh, obj)
			return fmt.Errorf("%w: %v", ErrLedgerUnsupported, err)
		}
		// Prove now that the token lets the marks change.
		if err := t.mod.ctx.SetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
			_ = t.mod.ctx.DestroyObject(sh, obj)
			return fmt.Errorf("%w: %s refused to change the label of a key object (%v); keyquorum keeps presignature ledgers there", ErrLedgerUnsupported, t.describe(), err)
		}
		l.obj = obj
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Ledger returns the ledger named name: [ErrLedgerNotFound] if there is none,
// [ErrKeyAmbiguous] if several objects carry the name.
func (t *Token) Ledger(ctx context.Context, name string) (*Ledger, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := validLedgerName(name); err != nil {
		return nil, err
	}
	l := &Ledger{tok: t, name: name}
	err := t.pool.do(ctx, OpLedgerFind, func(sh pkcs11.SessionHandle) error {
		hs, err := t.findLedger(sh, name)
		if err != nil {
			return err
		}
		switch len(hs) {
		case 0:
			return fmt.Errorf("%w: no ledger %q on %s", ErrLedgerNotFound, name, t.describe())
		case 1:
		default:
			return fmt.Errorf("%w: %d objects for ledger %q on %s", ErrKeyAmbiguous, len(hs), name, t.describe())
		}
		l.obj = hs[0]
		label, err := l.readLabel(sh)
		if err != nil {
			return err
		}
		slots, _, err := decodeMarks(label, 0)
		if err != nil {
			return fmt.Errorf("%w: ledger %q on %s", err, name, t.describe())
		}
		l.slots = slots
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Ledgers lists the names of the ledgers on the token that start with
// prefix, in no particular order.
func (t *Token) Ledgers(ctx context.Context, prefix string) ([]string, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if strings.HasPrefix(name, prefix) && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	err := t.pool.do(ctx, OpLedgerList, func(sh pkcs11.SessionHandle) error {
		// The key form: a secret key whose CKA_ID starts with the prefix.
		keys, err := t.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		})
		if err != nil {
			return fmt.Errorf("hsmshare: list ledgers on %s: %w", t.describe(), err)
		}
		for _, h := range keys {
			attrs, err := t.mod.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
			if err != nil {
				return fmt.Errorf("hsmshare: read a key's CKA_ID on %s: %w", t.describe(), err)
			}
			if len(attrs) == 1 {
				if name, ok := strings.CutPrefix(string(attrs[0].Value), ledgerIDPrefix); ok {
					add(name)
				}
			}
		}
		// The earlier form: data objects whose CKA_VALUE is the name.
		hs, err := t.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, legacyLedgerApplication),
		})
		if err != nil {
			return fmt.Errorf("hsmshare: list ledgers on %s: %w", t.describe(), err)
		}
		for _, h := range hs {
			attrs, err := t.mod.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			if err != nil {
				return fmt.Errorf("hsmshare: read a ledger's name on %s: %w", t.describe(), err)
			}
			if len(attrs) == 1 {
				add(string(attrs[0].Value))
			}
		}
		return nil
	})
	return out, err
}

// Name returns the ledger's name.
func (l *Ledger) Name() string { return l.name }

// Slots returns the number of slots.
func (l *Ledger) Slots() int { return l.slots }

func (l *Ledger) readLabel(sh pkcs11.SessionHandle) (string, error) {
	attrs, err := l.tok.mod.ctx.GetAttributeValue(sh, l.obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
	if err != nil {
		if ckrIs(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			return "", fmt.Errorf("%w: ledger %q on %s is gone", ErrLedgerNotFound, l.name, l.tok.describe())
		}
		return "", fmt.Errorf("hsmshare: read ledger %q on %s: %w", l.name, l.tok.describe(), err)
	}
	if len(attrs) != 1 {
		return "", fmt.Errorf("%w: ledger %q on %s has no label", ErrLedgerCorrupted, l.name, l.tok.describe())
	}
	return string(attrs[0].Value), nil
}

func (l *Ledger) marks(sh pkcs11.SessionHandle) ([]byte, error) {
	label, err := l.readLabel(sh)
	if err != nil {
		return nil, err
	}
	_, m, err := decodeMarks(label, l.slots)
	if err != nil {
		return nil, fmt.Errorf("%w: ledger %q on %s", err, l.name, l.tok.describe())
	}
	return m, nil
}

// Used reports, for every slot, whether it has been used, as the token
// holds it now.
func (l *Ledger) Used(ctx context.Context) ([]bool, error) {
	if err := l.tok.usable(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []bool
	err := l.tok.pool.do(ctx, OpLedgerRead, func(sh pkcs11.SessionHandle) error {
		m, err := l.marks(sh)
		if err != nil {
			return err
		}
		out = make([]bool, l.slots)
		for i := range out {
			out[i] = m[i/8]&(1<<(i%8)) != 0
		}
		return nil
	})
	return out, err
}

// Use marks slots used, in one change of the token object. If any of them is
// out of range or already used, nothing changes and the error wraps
// [ErrSlotUsed] (or says which slot is out of range). When Use returns nil the
// marks are stored by the token. It returns how many slots stay unused.
func (l *Ledger) Use(ctx context.Context, slots []int) (int, error) {
	if err := l.tok.usable(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	left := 0
	err := l.tok.pool.do(ctx, OpLedgerMark, func(sh pkcs11.SessionHandle) error {
		m, err := l.marks(sh)
		if err != nil {
			return err
		}
		next := make([]byte, len(m))
		copy(next, m)
		for _, s := range slots {
			if s < 0 || s >= l.slots {
				return fmt.Errorf("hsmshare: ledger %q has no slot %d (it has %d)", l.name, s, l.slots)
			}
			if next[s/8]&(1<<(s%8)) != 0 {
				return fmt.Errorf("%w: slot %d of ledger %q", ErrSlotUsed, s, l.name)
			}
			next[s/8] |= 1 << (s % 8)
		}
		used := 0
		for _, b := range next {
			used += bits.OnesCount8(b)
		}
		left = l.slots - used
		if err := l.tok.mod.ctx.SetAttributeValue(sh, l.obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, encodeMarks(l.slots, next))}); err != nil {
			if ckrIs(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
				return fmt.Errorf("%w: ledger %q on %s is gone", ErrLedgerNotFound, l.name, l.tok.describe())
			}
			return fmt.Errorf("hsmshare: mark ledger %q on %s: %w", l.name, l.tok.describe(), err)
		}
		return nil
	})
	return left, err
}

// Destroy removes the ledger from the token. A destroyed ledger cannot come
// back: anything that refers to it must treat every slot as used.
func (l *Ledger) Destroy(ctx context.Context) error {
	if err := l.tok.usable(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tok.pool.do(ctx, OpLedgerDestroy, func(sh pkcs11.SessionHandle) error {
		if err := l.tok.mod.ctx.DestroyObject(sh, l.obj); err != nil {
			if ckrIs(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
				return nil
			}
			return fmt.Errorf("hsmshare: destroy ledger %q on %s: %w", l.name, l.tok.describe(), err)
		}
		return nil
	})
}

// String describes the ledger.
func (l *Ledger) String() string {
	return fmt.Sprintf("hsmshare.Ledger{%q, %d slots, %s}", l.name, l.slots, l.tok.describe())
}
