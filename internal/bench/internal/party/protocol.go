package party

import "time"

// Site is one party's HSM token and store directory, as the benchmark
// driver created them.
type Site struct {
	// Index is the site's position in the driver's list of sites; requests
	// name parties by it.
	Index int `json:"index"`
	// Module is the PKCS#11 module path.
	Module string `json:"module"`
	// TokenLabel selects the site's token.
	TokenLabel string `json:"token_label"`
	// PINFile holds the token's user PIN (mode 0600).
	PINFile string `json:"pin_file"`
	// StoreDir is the site's sealed store directory.
	StoreDir string `json:"store_dir"`
}

// Network kinds a [Config] can ask for.
const (
	// Memnet joins every site of the process through one in-memory hub.
	Memnet = "memnet"
	// Libp2p gives every site its own libp2p host.
	Libp2p = "libp2p"
)

// Config says which sites one party process runs and how they talk.
type Config struct {
	// Sites are the sites this process runs: all of a committee for
	// Memnet, normally one for Libp2p.
	Sites []Site `json:"sites"`
	// Network is Memnet or Libp2p.
	Network string `json:"network"`
	// Listen are the libp2p listen addresses of every site of this process
	// (Libp2p only). Default: TCP and QUIC on 127.0.0.1, ports chosen by
	// the system.
	Listen []string `json:"listen,omitempty"`
	// Committee holds the party ID of every site the driver knows, by site
	// index, so a libp2p network admits exactly those peers.
	Committee []string `json:"committee,omitempty"`
	// EmulateLatency wraps every site's network in a Delay, whose round
	// trip time the "delay" request sets.
	EmulateLatency bool `json:"emulate_latency,omitempty"`
}

// Hello is the first line a serving process writes: the sites it runs.
type Hello struct {
	Parties []Hosted `json:"parties"`
}

// Hosted describes one site a process runs.
type Hosted struct {
	Index int      `json:"index"`
	ID    string   `json:"id"`
	Addrs []string `json:"addrs,omitempty"`
}

// Operations a [Request] can ask for.
const (
	OpPeers        = "peers"         // learn other sites' libp2p addresses (Peers)
	OpFeed         = "feed"          // add fixture pre-parameter sets to sites' pools (Feed)
	OpKeygen       = "keygen"        // Party starts a keygen of Parties with Threshold
	OpSign         = "sign"          // Party starts GG18 signing of Count digests, one after another
	OpPresign      = "presign"       // Party makes Count presignatures with Parties as signers
	OpOnline       = "online"        // Party signs Count digests from presignatures (Batch: in one round)
	OpReshare      = "reshare"       // Party moves KeyID from Parties to NewParties with Threshold
	OpPrepare      = "prepare"       // Party builds its tables for checking online signatures under KeyID
	OpPool         = "pool"          // ready presignatures of (KeyID, Parties) at Party
	OpDelay        = "delay"         // set the emulated round trip time to RTT
	OpMemory       = "memory"        // report this process's peak and current resident memory
	OpResetMemory  = "reset-memory"  // reset the peak resident memory mark
	OpProfileStart = "profile-start" // write a CPU profile to Path (and a trace to Trace) until profile-stop
	OpProfileStop  = "profile-stop"
	OpConnections  = "connections" // how Party's libp2p connections are secured
	OpPing         = "ping"
)

// Request is one line the driver sends to a party process.
type Request struct {
	Op string `json:"op"`
	// Party is the site (by index) that acts: the initiator of a protocol.
	Party int `json:"party"`
	// Parties is the committee of a keygen, the signers of a signing or
	// presigning, the old committee of a reshare.
	Parties []int `json:"parties,omitempty"`
	// NewParties is the new committee of a reshare.
	NewParties []int `json:"new_parties,omitempty"`
	// Threshold is M of a keygen or of a reshare's new committee.
	Threshold int    `json:"threshold,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	// Count is how many signatures or presignatures.
	Count int `json:"count,omitempty"`
	// Parallel is the number of presigning sessions at once.
	Parallel int `json:"parallel,omitempty"`
	// Seed and First name the digests to sign: digest i is Digest(Seed,
	// First+i), so a driver can sign the same digests again.
	Seed  string `json:"seed,omitempty"`
	First int    `json:"first,omitempty"`
	// Batch signs all Count digests in one online round (SignBatch).
	Batch bool `json:"batch,omitempty"`
	// Concurrent, for sign and online without Batch, runs the Count
	// requests with up to Concurrent of them at once, each a request of
	// its own as a service's callers make them. Every request is tried: a
	// failed one is counted in the response (Failed, Errors) instead of
	// failing the whole operation, and each one's latency is reported.
	Concurrent int `json:"concurrent,omitempty"`
	// KeyPath is the BIP-32 derivation path of presign, online, prepare
	// and pool ("" for the key itself).
	KeyPath string `json:"key_path,omitempty"`
	// Feed lists fixture sets per site.
	Feed []Feed `json:"feed,omitempty"`
	// Peers lists other sites' addresses.
	Peers []Hosted `json:"peers,omitempty"`
	// RTT is the emulated round trip time.
	RTT time.Duration `json:"rtt,omitempty"`
	// Path is the CPU profile file.
	Path string `json:"path,omitempty"`
	// Trace, when set, is a file that receives a runtime execution trace
	// alongside the CPU profile (it shows where the process waited).
	Trace string `json:"trace,omitempty"`
}

// Feed gives one site fixture pre-parameter sets (indexes into
// testdata/preparams).
type Feed struct {
	Site int   `json:"site"`
	Sets []int `json:"sets"`
}

// Response answers one [Request].
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// KeyID is the key a keygen made.
	KeyID string `json:"key_id,omitempty"`
	// Done counts what was made or signed.
	Done int `json:"done,omitempty"`
	// Failed counts the requests of a Concurrent operation that failed;
	// Busy those of them refused as busy (tss.ErrBusy). Errors holds the
	// first few distinct failures.
	Failed int      `json:"failed,omitempty"`
	Busy   int      `json:"busy,omitempty"`
	Errors []string `json:"errors,omitempty"`
	// Latencies are the durations of the requests of a Concurrent
	// operation, successful or not, in the order they ended.
	Latencies []time.Duration `json:"latencies,omitempty"`
	// Used and Burned are the pool's counters (pool): presignatures
	// consumed, and consumed by an online signing that then failed.
	Used   uint64 `json:"used,omitempty"`
	Burned uint64 `json:"burned,omitempty"`
	// CPU is the user and system CPU time the process has used (memory).
	CPU time.Duration `json:"cpu,omitempty"`
	// Epoch is a key's epoch after a reshare.
	Epoch uint64 `json:"epoch,omitempty"`
	// PeakKiB and CurrentKiB are VmHWM and VmRSS of the process.
	PeakKiB    int64 `json:"peak_kib,omitempty"`
	CurrentKiB int64 `json:"current_kib,omitempty"`
	// Connections describes libp2p connections (OpConnections).
	Connections []Connection `json:"connections,omitempty"`
	// Took is how long the operation took inside the party process.
	Took time.Duration `json:"took,omitempty"`
}

// Connection describes how one libp2p connection is secured.
type Connection struct {
	Peer        int    `json:"peer"`
	Transport   string `json:"transport"`
	Security    string `json:"security"`
	KeyExchange string `json:"key_exchange"`
}
