package tss

import "context"

// Store keeps a party's secrets, sealed. package hsmshare's *Store satisfies
// it: every value is encrypted under a key that never leaves the party's HSM
// before it reaches the disk.
//
// kind and id name a record; both use only lowercase letters, digits, '.',
// '_' and '-' and are at most 128 bytes. A record has numbered versions;
// older versions stay until Prune removes them, so a new version can be
// written before the old one is given up.
//
// Errors for a missing record or version must satisfy
// errors.Is(err, fs.ErrNotExist). Implementations are safe for concurrent use.
type Store interface {
	// Put seals data and writes it as the given version of (kind, id),
	// atomically and durably. It does not keep a reference to data.
	Put(ctx context.Context, kind, id string, version uint64, data []byte) error
	// Get returns the newest version of (kind, id) and its number. The caller
	// owns the returned slice and should wipe it when done.
	Get(ctx context.Context, kind, id string) (data []byte, version uint64, err error)
	// GetVersion returns one version of (kind, id).
	GetVersion(ctx context.Context, kind, id string, version uint64) ([]byte, error)
	// Versions lists the stored versions of (kind, id), ascending.
	Versions(ctx context.Context, kind, id string) ([]uint64, error)
	// Prune removes every version of (kind, id) older than keep.
	Prune(ctx context.Context, kind, id string, keep uint64) error
	// Delete removes every version of (kind, id), durably.
	Delete(ctx context.Context, kind, id string) error
	// DeleteMany removes every version of each id of kind with one durable
	// directory sync at the end, for retiring many records at once.
	DeleteMany(ctx context.Context, kind string, ids []string) error
	// List returns the ids of kind that have at least one version, sorted.
	List(ctx context.Context, kind string) ([]string, error)
}

// Ledger keeps, outside the store's files, which presignatures this party
// has used. package hsmshare's *Store satisfies it with private data
// objects in the party's HSM, where restoring the store from a backup
// cannot undo a mark (see hsmshare.Ledger).
//
// Every stored batch of presignatures has a ledger of the same name with
// one slot per presignature. A party marks a presignature's slot before it
// releases a signature share made with it; a batch whose ledger is missing
// counts as used up. Names follow the Store's naming rules.
//
// A Ledger need not be safe for concurrent use on one name; the Engine
// serializes its calls per batch. Errors for a missing ledger must satisfy
// errors.Is(err, fs.ErrNotExist).
type Ledger interface {
	// CreateLedger creates the ledger name with slots unused slots; it
	// fails if the name exists.
	CreateLedger(ctx context.Context, name string, slots int) error
	// UseLedger marks slots used, durably and all or none: if one of them
	// is already used, nothing changes and it returns an error. It returns
	// how many slots stay unused.
	UseLedger(ctx context.Context, name string, slots []int) (int, error)
	// LedgerUsed reports for each slot whether it is used.
	LedgerUsed(ctx context.Context, name string) ([]bool, error)
	// DeleteLedger removes the ledger; a missing one is not an error.
	DeleteLedger(ctx context.Context, name string) error
	// Ledgers lists the names of the ledgers that exist.
	Ledgers(ctx context.Context) ([]string, error)
}
