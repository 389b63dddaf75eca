package keyquorum

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/offline"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// Defaults used by [Open] for zero [Config] fields.
const (
	// DefaultSealKeyLabel is the CKA_LABEL of the site's seal key.
	DefaultSealKeyLabel = "keyquorum-seal"
	// DefaultIdentityLabel is the CKA_LABEL of the site's identity key pair.
	DefaultIdentityLabel = "keyquorum-identity"
	// DefaultHPKEKeyLabel is the CKA_LABEL of the site's HPKE key pair,
	// which decrypts the bundle files other sites send it.
	DefaultHPKEKeyLabel = "keyquorum-hpke"
	// DefaultPreParamsTarget is how many Paillier pre-parameter sets the
	// node keeps ready for keygen.
	DefaultPreParamsTarget = tss.DefaultPreParamsTarget
	// DefaultPoolParallel is how many presigning sessions a pool refill
	// runs at once.
	DefaultPoolParallel = tss.DefaultPresignParallel
	// DefaultRoundTimeout is how long a protocol round waits without
	// progress before it fails naming the parties it waits for.
	DefaultRoundTimeout = tss.DefaultRoundTimeout
	// DefaultJoinTimeout is how long an initiator waits for the other
	// parties to accept a session.
	DefaultJoinTimeout = tss.DefaultJoinTimeout
	// DefaultMaxPoolsPerKey is how many presignature pools of one key the
	// node records when other sites initiated them.
	DefaultMaxPoolsPerKey = 32
	// DefaultMaxPoolsPerInitiator is how many presignature pools the node
	// records that one other site initiated, over all keys.
	DefaultMaxPoolsPerInitiator = 64
)

// Store record names the Node uses for its own state, beside the records
// of package tss. Both are sealed like every record.
const (
	kindTransport = "transport"
	idQUICSecret  = "quic-secret"
	kindNode      = "node"
	idPools       = "pools"
)

// Config configures a [Node]. HSM and StoreDir are always required, Peers
// or BundlePeers unless Offline; every other field has the default named
// in its comment.
type Config struct {
	// HSM says which PKCS#11 module and token hold this site's keys and
	// where the user PIN comes from (use PINSource in production; PIN is
	// for tests). Required.
	HSM hsmshare.Config
	// SealKeyLabel is the label of the AES key that seals the store.
	// Default DefaultSealKeyLabel.
	SealKeyLabel string
	// IdentityLabel is the label of the P-256 key pair that is the site's
	// network identity; its peer ID is the site's party ID. Default
	// DefaultIdentityLabel.
	IdentityLabel string
	// CreateKeys lets Open generate the seal key and the identity key in
	// the token when they do not exist yet (first start of a site).
	// Existing keys are always loaded and checked, never replaced: a key
	// with weaker attributes than required is refused
	// (hsmshare.ErrWeakKey). Default: off, so a misconfigured token label
	// fails with hsmshare.ErrKeyNotFound instead of creating a new site.
	CreateKeys bool
	// AllowNoTokenRNG lets a site whose token announces no random number
	// generator (CKF_RNG unset) run with the operating system's generator
	// alone. By default Open refuses such a token (hsmshare.ErrNoRNG):
	// every secret of a site (key shares, nonces, Paillier primes) mixes
	// the token's generator with the operating system's, see
	// hsmshare.Random. Opting out is logged at every start and shown in
	// Status.Entropy. A token that announces a generator which then fails
	// is never worked around. Default: off.
	AllowNoTokenRNG bool

	// StoreDir is the directory of the site's sealed store (created with
	// mode 0700 if missing; an existing one must not be accessible to
	// other users). Required.
	StoreDir string

	// Offline opens only the token, the keys and the store: no network,
	// no engine, no background work. It is meant for setting up a site
	// and importing pre-parameters; protocol operations fail with
	// ErrOffline. Default: off. (A cold site, which has no network but
	// takes part in protocols, is not Offline: it runs with BundlePeers
	// and no other member in Peers.)
	Offline bool

	// Peers is the committee: every site's peer ID and addresses (the same
	// list on every site; this site's own entry is ignored for dialing).
	// Only these peers may connect. Required unless Offline or
	// BundlePeers lists the other sites. With no entry besides this site,
	// the node starts no libp2p host at all: no listening socket, nothing
	// dialed.
	Peers []transport.Peer

	// BundlePeers are the members of the committee this site reaches
	// through bundle files instead of libp2p (package offline): on a cold
	// site, every other site; on an online site, the cold ones. The
	// engine's messages to them wait until ExportBundle writes them into a
	// bundle, and their bundles reach the engine through ImportBundle. A
	// site listed here must not also be in Peers. Each entry comes from
	// the other site's BundleIdentity. Default: none.
	BundlePeers []BundlePeer
	// BundleCommittee is the committee (channel) ID every bundle of this
	// site names; all sites of one committee use the same ID (a-z, 0-9,
	// '.', '_', '-', at most offline.MaxCommitteeLen bytes). Required with
	// BundlePeers.
	BundleCommittee string
	// HPKEKeyLabel is the label of the P-256 key pair in the token that
	// decrypts the bundles this site receives (hsmshare.ECDHKey; the token
	// must offer CKM_ECDH1_DERIVE). BundleIdentity creates it; Open loads
	// it when BundlePeers is set (creating it only with CreateKeys).
	// Default DefaultHPKEKeyLabel.
	HPKEKeyLabel string
	// BundleTTL is how long a bundle this site exports stays valid.
	// Default offline.DefaultTTL (24 hours); at most offline.MaxTTL.
	BundleTTL time.Duration
	// BundleMaxSize bounds the bundles this site exports, in bytes
	// (offline.Config.MaxExportSize): between offline.MinExportSize and
	// offline.MaxBundleSize, the default. Set it to what the channel that
	// carries the files takes; messages that do not fit wait for the next
	// bundle.
	BundleMaxSize int
	// ListenAddrs are the libp2p multiaddrs to listen on. Default
	// transport.DefaultListenAddrs (TCP and QUIC on port 4001).
	ListenAddrs []string
	// RequirePostQuantum refuses peer connections whose key exchange is
	// not hybrid post-quantum (see transport.Config). Default: off.
	RequirePostQuantum bool
	// MDNS finds committee peers' addresses on the local network, for
	// demos (see transport.Config). Default: off.
	MDNS bool
	// SendTimeout bounds how long a message waits for a peer that cannot
	// be reached (reconnect attempts) before the operation fails naming
	// it. Default transport.DefaultSendTimeout.
	SendTimeout time.Duration

	// PreParamsTarget is how many Paillier pre-parameter sets the node
	// keeps ready, generating them in the background (safe primes: 5 to 60
	// seconds of CPU each). Default DefaultPreParamsTarget.
	PreParamsTarget int
	// PreParamsConcurrency is how many sets are generated at once.
	// Default 1.
	PreParamsConcurrency int
	// NoPreParamsGeneration turns background generation off; sets then
	// come only from ImportPreParams. Default: off (generation runs).
	NoPreParamsGeneration bool
	// PreParamsCommand, when set, is the command line of a pre-parameter
	// worker: a program whose body is [RunPreParamsWorker] (kqnode's is
	// `kqnode preparams-worker`). Each set is then generated by a run of
	// it as a child process at the lowest CPU priority (on Linux
	// SCHED_IDLE and nice 19), so that generation takes only CPU time
	// that signing leaves idle. Default: none, sets are generated inside
	// this process, where they compete with signing for the cores.
	PreParamsCommand []string

	// PoolTarget, when positive, is the number of ready GG20
	// presignatures the node keeps in each of its own presignature pools:
	// every (key, signer set, path) this site has presigned for as the
	// initiator, once a presigning session for it succeeded, remembered
	// in the store across restarts. Pools that other sites initiated are
	// theirs to keep; this site only holds its parts of them (within
	// MaxPoolsPerKey and MaxPoolsPerInitiator). SetPoolTarget overrides it
	// for one pool. Default 0: no background presigning, pools fill only
	// through Presign and SetPoolTarget.
	PoolTarget int
	// PoolParallel is how many presigning sessions one refill runs at
	// once. Default DefaultPoolParallel.
	PoolParallel int
	// MaxPoolsPerKey bounds the pools of one key that the node records
	// (and so maintains) when another site initiated their first
	// presigning session; pools this site initiates are always recorded.
	// Default DefaultMaxPoolsPerKey.
	MaxPoolsPerKey int
	// MaxPoolsPerInitiator bounds the pools, over all keys, that the node
	// records for one other site that initiated them. Default
	// DefaultMaxPoolsPerInitiator.
	MaxPoolsPerInitiator int

	// SigningPolicy is this site's own signing policy (LoadSigningPolicy,
	// policy.Parse; format in policy/FORMAT.md). The site signs only what
	// it allows: for every signing session, its own or another site's, the
	// site derives the digests from the intent that travels with it, and
	// joins only for those, when a rule allows the intent with the
	// approvals that came with it. Without a policy the site starts but
	// signs nothing (ErrNoSigningPolicy): there is no permissive default.
	// Keygen, presigning and reconciliation are not signing and are not
	// subject to it.
	SigningPolicy *policy.Policy
	// VelocityRetention is how long the site remembers spends for the
	// velocity limits of its policy (sealed in the store, kept across
	// restarts). Default policy.DefaultRetention (31 days).
	VelocityRetention time.Duration
	// AuditDir is the directory of the site's audit log (package audit):
	// every start and stop, signing decision, signature and finished
	// session, durable before it takes effect, in a Merkle tree whose
	// checkpoints the HSM identity key signs. Default: "audit" beside
	// StoreDir. A site that cannot append refuses to sign (ErrAudit).
	AuditDir string
	// AuditCheckpointInterval is how often the site signs a checkpoint of
	// its audit log (and once at Close). Default
	// DefaultAuditCheckpointInterval.
	AuditCheckpointInterval time.Duration
	// DisableAudit turns the audit log off, for benchmarks that compare
	// its cost. A custody site keeps it on.
	DisableAudit bool
	// Policy, if set, must also approve every session before this site
	// joins or proposes it (see tss.Policy), after the signing policy: a
	// hook for checks of the embedding service, which receives the
	// proposal with SignOptions.Evidence in its Evidence field.
	Policy tss.Policy
	// RoundTimeout is how long a protocol round waits without progress
	// before failing with a *tss.RoundTimeoutError naming the parties
	// that did not answer. Default DefaultRoundTimeout.
	RoundTimeout time.Duration
	// JoinTimeout is how long an initiator waits for the other parties to
	// accept a session. Default DefaultJoinTimeout.
	JoinTimeout time.Duration

	// Metrics, if set, is where the node registers its Prometheus
	// collectors (every name starts with keyquorum_; the README lists
	// them): sessions, rounds, operations, refusals, token operations,
	// messages and round-trip times counted as they happen, and pools,
	// pre-parameters, peers and the audit log read at each scrape. The
	// metrics carry no secrets, digests or session IDs, but they reveal
	// the site's activity. Each Node needs its own registry (or a
	// prometheus.WrapRegistererWith label); Close unregisters them.
	// Default: no metrics.
	Metrics prometheus.Registerer

	// Logger receives structured logs from every part of the node (peer
	// IDs, key IDs, session IDs and reasons; never secrets, PINs or
	// payloads). Default: no logging.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.StoreDir == "" {
		return c, fmt.Errorf("%w: StoreDir is required", ErrInvalidConfig)
	}
	if !c.Offline && len(c.Peers) == 0 && len(c.BundlePeers) == 0 {
		return c, fmt.Errorf("%w: Peers or BundlePeers is required (the committee's peer IDs and addresses, or its members' bundle identities) unless Offline", ErrInvalidConfig)
	}
	if len(c.BundlePeers) > 0 && c.BundleCommittee == "" {
		return c, fmt.Errorf("%w: BundleCommittee is required with BundlePeers (the committee ID every site of the committee uses)", ErrInvalidConfig)
	}
	if c.BundleTTL < 0 || c.BundleTTL > offline.MaxTTL {
		return c, fmt.Errorf("%w: BundleTTL %v is outside 0 to %v", ErrInvalidConfig, c.BundleTTL, offline.MaxTTL)
	}
	if c.HPKEKeyLabel == "" {
		c.HPKEKeyLabel = DefaultHPKEKeyLabel
	}
	if c.SealKeyLabel == "" {
		c.SealKeyLabel = DefaultSealKeyLabel
	}
	if c.IdentityLabel == "" {
		c.IdentityLabel = DefaultIdentityLabel
	}
	if c.SealKeyLabel == c.IdentityLabel {
		return c, fmt.Errorf("%w: SealKeyLabel and IdentityLabel must differ (both %q)", ErrInvalidConfig, c.SealKeyLabel)
	}
	if c.HPKEKeyLabel == c.IdentityLabel || c.HPKEKeyLabel == c.SealKeyLabel {
		return c, fmt.Errorf("%w: HPKEKeyLabel %q must differ from SealKeyLabel and IdentityLabel", ErrInvalidConfig, c.HPKEKeyLabel)
	}
	if c.PreParamsTarget < 0 || c.PreParamsConcurrency < 0 || c.PoolTarget < 0 || c.PoolParallel < 0 ||
		c.MaxPoolsPerKey < 0 || c.MaxPoolsPerInitiator < 0 ||
		c.RoundTimeout < 0 || c.JoinTimeout < 0 || c.SendTimeout < 0 || c.VelocityRetention < 0 || c.AuditCheckpointInterval < 0 {
		return c, fmt.Errorf("%w: counts and timeouts must not be negative", ErrInvalidConfig)
	}
	if c.PreParamsTarget == 0 {
		c.PreParamsTarget = DefaultPreParamsTarget
	}
	if c.PreParamsConcurrency == 0 {
		c.PreParamsConcurrency = tss.DefaultPreParamsConcurrency
	}
	if c.PoolParallel == 0 {
		c.PoolParallel = DefaultPoolParallel
	}
	if c.MaxPoolsPerKey == 0 {
		c.MaxPoolsPerKey = DefaultMaxPoolsPerKey
	}
	if c.MaxPoolsPerInitiator == 0 {
		c.MaxPoolsPerInitiator = DefaultMaxPoolsPerInitiator
	}
	if c.RoundTimeout == 0 {
		c.RoundTimeout = DefaultRoundTimeout
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Node is one site of a keyquorum committee: its HSM token and keys, its
// sealed store, its libp2p network, its pre-parameter pool and its protocol
// engine. Create it with [Open] and stop it with Close. It is safe for
// concurrent use.
type Node struct {
	cfg      Config
	log      *slog.Logger
	started  time.Time
	token    *hsmshare.Token
	identity *hsmshare.Identity
	store    *hsmshare.Store
	party    tss.PartyID
	prepool  *tss.PreParamsPool
	net      *observedNetwork // nil when offline
	hpkeMu   sync.Mutex       // guards hpke's loading
	hpke     *hsmshare.ECDHKey
	eng      *tss.Engine // nil when offline
	pools    *poolRegistry
	ops      *operations
	reshares *reshares
	sealMu   sync.Mutex // one seal-key rotation at a time
	labelMu  sync.Mutex // guards labels and label changes
	labels   map[string]string
	quic     []byte
	// random is the token's generator mixed with the OS one; nil only
	// with Config.AllowNoTokenRNG on a token without a generator.
	random *hsmshare.Random
	// rand is what every secret of the site is drawn from: random, or
	// crypto/rand when random is nil.
	rand io.Reader

	metrics    *metrics // nil without Config.Metrics
	unregister func()   // removes the collectors from Config.Metrics

	audit      *audit.Log    // nil when offline or DisableAudit
	details    *detailSealer // seals audit detail parts; nil with audit
	witness    witnessing    // this site as the other sites' audit witness
	signPol    *signPolicy   // nil: the site signs nothing
	keyCache   *policy.KeyCache
	velocityMu sync.Mutex // orders saves of the velocity record

	// proposeUnchecked lets this site's engine propose signing sessions
	// that no call of its own authorized: tests use it to play a
	// compromised site. Nothing else sets it.
	proposeUnchecked atomic.Bool

	runCtx context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup // background goroutines

	mu        sync.Mutex
	closed    bool
	calls     sync.WaitGroup // calls in flight
	engineErr error          // why the engine stopped early, if it did
	closeErr  error
	closeOnce sync.Once
}

// Open opens the site described by cfg and starts its background work:
// the protocol engine (which joins sessions other sites propose, after
// checking them and the Policy), pre-parameter generation and
// presignature pool maintenance. On any error everything opened so far is
// closed again.
//
// Errors wrap [ErrInvalidConfig], the hsmshare sentinels (ErrModuleNotFound,
// ErrTokenNotFound, ErrWrongPIN, ErrKeyNotFound when a key is missing and
// CreateKeys is off, ErrWeakKey, ErrStoreLocked when another process uses
// StoreDir, ...) or [transport.ErrInvalidConfig].
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, started: time.Now(), ops: newOperations(), reshares: newReshares()}
	n.ops.failed = n.operationFailed
	defer func() {
		if err != nil {
			n.release()
		}
	}()

	if err := n.registerMetrics(); err != nil {
		return nil, err
	}
	hsmCfg := cfg.HSM
	if m := n.metrics; m != nil {
		m.observeOperations(n.ops)
		if user := hsmCfg.Observe; user != nil {
			hsmCfg.Observe = func(op hsmshare.Op, d time.Duration, err error) {
				m.hsmObserved(op, d, err)
				user(op, d, err)
			}
		} else {
			hsmCfg.Observe = m.hsmObserved
		}
	}
	n.token, err = hsmshare.Open(ctx, hsmCfg)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: open HSM token: %w", err)
	}
	if err := n.openRandom(ctx); err != nil {
		return nil, err
	}
	// After a rotation the store names a later generation of the label.
	seal, err := loadOrCreate(ctx, n, "seal key", SealKeyLabel(cfg.StoreDir, cfg.SealKeyLabel), n.token.SealKey, n.token.CreateSealKey)
	if err != nil {
		return nil, err
	}
	if n.identity, err = loadOrCreate(ctx, n, "identity key", cfg.IdentityLabel, n.token.Identity, n.token.CreateIdentity); err != nil {
		return nil, err
	}
	if n.party, err = transport.PartyIDFromPublicKey(n.identity.PublicKey()); err != nil {
		return nil, fmt.Errorf("keyquorum: identity key %q: %w", cfg.IdentityLabel, err)
	}
	if _, err = transport.PeerIDFromParty(n.party); err != nil {
		return nil, fmt.Errorf("keyquorum: identity key %q: %w", cfg.IdentityLabel, err)
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("keyquorum: create store directory: %w", err)
	}
	if n.store, err = hsmshare.OpenStore(cfg.StoreDir, seal, string(n.party)); err != nil {
		return nil, fmt.Errorf("keyquorum: open store %s: %w", cfg.StoreDir, err)
	}
	if n.quic, err = n.quicSecret(ctx); err != nil {
		return nil, err
	}
	n.prepool, err = tss.NewPreParamsPool(tss.PreParamsConfig{
		Store: n.store, Target: cfg.PreParamsTarget, Concurrency: cfg.PreParamsConcurrency,
		Logger: n.log.With("component", "preparams"), Rand: n.rand, Command: cfg.PreParamsCommand,
	})
	if err != nil {
		return nil, fmt.Errorf("keyquorum: pre-parameter pool: %w", err)
	}
	n.pools, err = loadPools(ctx, n.store, n.party, cfg.MaxPoolsPerKey, cfg.MaxPoolsPerInitiator)
	if err != nil {
		return nil, err
	}
	n.keyCache = policy.NewKeyCache(0)
	if cfg.SigningPolicy != nil {
		v, err := n.loadVelocity(ctx, cfg.VelocityRetention)
		if err != nil {
			return nil, err
		}
		n.signPol = &signPolicy{pol: cfg.SigningPolicy, velocity: v, now: time.Now}
	} else {
		n.log.Warn("no signing policy: this site signs nothing until it is restarted with one")
	}
	n.runCtx, n.cancel = context.WithCancel(context.Background())
	if cfg.Offline {
		n.log.Info("site opened offline", "peer_id", string(n.party))
		return n, nil
	}

	if err := n.openAudit(ctx); err != nil {
		return nil, err
	}
	polName := ""
	if cfg.SigningPolicy != nil {
		polName = cfg.SigningPolicy.Name()
	}
	if err := n.record(ctx, auditSiteStart, map[string]string{"peer_id": string(n.party), "policy": polName,
		"committee": fmt.Sprint(len(cfg.Peers))}); err != nil {
		return nil, err
	}

	var files *offline.Network
	if len(cfg.BundlePeers) > 0 {
		if files, err = n.openBundles(ctx); err != nil {
			return nil, err
		}
	}
	var tn *transport.Network
	if n.libp2pPeers() > 0 {
		tn, err = transport.New(transport.Config{
			Identity: n.identity, Peers: cfg.Peers, ListenAddrs: cfg.ListenAddrs,
			RequirePostQuantum: cfg.RequirePostQuantum, MDNS: cfg.MDNS, QUICSecret: n.quic,
			SendTimeout: cfg.SendTimeout, Logger: n.log, // the transport names itself in its logs
		})
		if err != nil {
			if files != nil {
				files.Close()
			}
			return nil, fmt.Errorf("keyquorum: start network: %w", err)
		}
	}
	n.net = newObservedNetwork(n.party, tn, files, cfg.Peers, n.metrics)
	if n.net.in != nil {
		n.goBackground(func(ctx context.Context) { n.net.merge(ctx, tn) })
		n.goBackground(func(ctx context.Context) { n.net.merge(ctx, files) })
	}
	if tn != nil {
		tn.HandleRequests(witnessProtocol, n.serveWitness)
		tn.HandleRequests(pingProtocol, n.servePing)
		if n.metrics != nil {
			n.goBackground(n.probePeers)
		}
	}
	n.goBackground(n.runAuditCheckpoints)
	var observer tss.Observer // not a nil *metrics in an interface
	if n.metrics != nil {
		observer = n.metrics
	}
	n.eng, err = tss.New(tss.Config{
		Network: n.net, Store: n.store, PreParams: n.prepool, PauseWhileSigning: n.prepool, Policy: n.policy, Completed: n.completed,
		Presignatures: n.presignatures,
		Observer:      observer, RoundTimeout: cfg.RoundTimeout, JoinTimeout: cfg.JoinTimeout,
		Logger: n.log.With("component", "engine"), Rand: n.rand,
	})
	if err != nil {
		return nil, fmt.Errorf("keyquorum: start engine: %w", err)
	}
	n.checkCommittees(ctx)
	n.goBackground(func(ctx context.Context) {
		if err := n.eng.Run(ctx); err != nil && ctx.Err() == nil {
			n.mu.Lock()
			n.engineErr = err
			n.mu.Unlock()
			n.log.Error("protocol engine stopped", "err", err.Error())
		}
	})
	if !cfg.NoPreParamsGeneration {
		n.goBackground(func(ctx context.Context) { _ = n.prepool.Run(ctx) })
	}
	for _, spec := range n.pools.list() {
		n.maintain(spec)
	}
	n.log.Info("site started", "peer_id", string(n.party), "listen", fmt.Sprint(n.net.Addrs()),
		"peers", len(cfg.Peers), "bundle_peers", len(cfg.BundlePeers), "pool_target", cfg.PoolTarget)
	return n, nil
}

// openRandom opens the site's randomness source: the token's generator
// mixed with the operating system's (hsmshare.Random), or, only with
// Config.AllowNoTokenRNG and a token that announces no generator, the
// operating system's alone.
func (n *Node) openRandom(ctx context.Context) error {
	r, err := n.token.Random(ctx)
	switch {
	case err == nil:
		n.random, n.rand = r, r
		return nil
	case errors.Is(err, hsmshare.ErrNoRNG) && n.cfg.AllowNoTokenRNG:
		n.log.Warn("the token has no random number generator: this site's secrets come from the operating system's generator alone (Config.AllowNoTokenRNG)", "token", n.token.Label())
		n.rand = rand.Reader
		return nil
	default:
		return fmt.Errorf("keyquorum: random number generator of token %q: %w", n.token.Label(), err)
	}
}

// loadOrCreate loads the site key of one kind (the seal key or the identity
// key) by label, creating it when Config.CreateKeys allows. what names the
// key in errors and logs.
func loadOrCreate[K interface{ ID() string }](ctx context.Context, n *Node, what, label string,
	load, create func(context.Context, string) (K, error)) (K, error) {
	k, err := load(ctx, label)
	if errors.Is(err, hsmshare.ErrKeyNotFound) && n.cfg.CreateKeys {
		k, err = create(ctx, label)
		if err == nil {
			n.log.Info("created "+what, "label", label, "id", k.ID())
		}
	}
	if err != nil {
		var zero K
		if errors.Is(err, hsmshare.ErrKeyNotFound) {
			return zero, fmt.Errorf("keyquorum: %s %q on token %q: %w (set up the site first, with Config.CreateKeys or `kqnode init`)", what, label, n.token.Label(), err)
		}
		return zero, fmt.Errorf("keyquorum: %s %q on token %q: %w", what, label, n.token.Label(), err)
	}
	return k, nil
}

// quicSecret loads the sealed secret the transport derives its QUIC
// stateless-reset key from, creating it at the first start. Keeping it
// across restarts lets peers notice a restart at once.
func (n *Node) quicSecret(ctx context.Context) ([]byte, error) {
	s, _, err := n.store.Get(ctx, kindTransport, idQUICSecret)
	if err == nil && len(s) >= 32 {
		return s, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keyquorum: load QUIC secret: %w", err)
	}
	clear(s)
	s = make([]byte, 32)
	if _, err := io.ReadFull(n.rand, s); err != nil {
		return nil, fmt.Errorf("keyquorum: read randomness: %w", err)
	}
	if err := n.store.Put(ctx, kindTransport, idQUICSecret, 1, s); err != nil {
		clear(s)
		return nil, fmt.Errorf("keyquorum: store QUIC secret: %w", err)
	}
	return s, nil
}

// goBackground runs f until Close, tracked so that Close waits for it.
func (n *Node) goBackground(f func(ctx context.Context)) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		f(n.runCtx)
	}()
}

// enter registers a call in flight. The returned context ends when ctx
// does or when the node closes; done must be called when the call returns.
func (n *Node) enter(ctx context.Context, needEngine bool) (context.Context, func(), error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, nil, ErrClosed
	}
	if needEngine && n.eng == nil {
		return nil, nil, ErrOffline
	}
	if needEngine && n.engineErr != nil {
		return nil, nil, fmt.Errorf("keyquorum: %w: %w", tss.ErrEngineClosed, n.engineErr)
	}
	n.calls.Add(1)
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.runCtx, cancel)
	return cctx, func() {
		stop()
		cancel()
		n.calls.Done()
	}, nil
}

// Close stops the node: it ends the sessions in progress (their callers get
// an error), stops background work, and closes the network, the store and
// the token. Every goroutine [Open] started has returned when Close returns.
// Calling Close again returns the first result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		if n.audit != nil {
			n.recordQuiet(auditSiteStop, map[string]string{"peer_id": string(n.party)})
		}
		n.cancel()
		n.calls.Wait()
		n.bg.Wait()
		n.closeErr = n.release()
		n.log.Info("site stopped", "peer_id", string(n.party))
	})
	return n.closeErr
}

// release closes what Open opened, in reverse order.
func (n *Node) release() error {
	var errs []error
	if n.cancel != nil {
		n.cancel()
	}
	n.bg.Wait() // the checkpoint signer uses the log and the token
	if n.net != nil {
		if err := n.net.Close(); err != nil {
			errs = append(errs, fmt.Errorf("keyquorum: close network: %w", err))
		}
	}
	if n.audit != nil {
		if err := n.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("keyquorum: close audit log: %w", err))
		}
	}
	if n.details != nil {
		n.details.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("keyquorum: close store: %w", err))
		}
	}
	if n.token != nil {
		if err := n.token.Close(); err != nil {
			errs = append(errs, fmt.Errorf("keyquorum: close token: %w", err))
		}
	}
	clear(n.quic)
	if n.unregister != nil {
		n.unregister()
	}
	return errors.Join(errs...)
}

// PartyID returns this site's party ID: the string form of its libp2p peer
// ID, derived from the HSM identity key. Other sites name it by this ID in
// key committees and signer sets.
func (n *Node) PartyID() tss.PartyID { return n.party }

// IdentityPublicKey returns the public half of the site's HSM identity key
// (P-256), from which its peer ID is derived.
func (n *Node) IdentityPublicKey() *ecdsa.PublicKey { return n.identity.PublicKey() }

// Addrs returns the libp2p addresses the node listens on, with the ports
// it was given; nil when offline.
func (n *Node) Addrs() []string {
	if n.net == nil {
		return nil
	}
	var out []string
	for _, a := range n.net.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// ImportPreParams stores a Paillier pre-parameter set made elsewhere (for
// example on a faster machine, see [ParsePreParams]) as ready for keygen.
// The set is validated and sealed; the node keeps no reference to pp, and
// the caller should Wipe it afterwards. Every set must be used by one site
// only, once: never import the same set into two sites.
func (n *Node) ImportPreParams(ctx context.Context, pp *PreParams) error {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	if pp == nil || pp.pp == nil {
		return fmt.Errorf("keyquorum: import pre-parameters: %w: no set", tss.ErrBadRequest)
	}
	if err := n.prepool.Add(ctx, pp.pp); err != nil {
		return fmt.Errorf("keyquorum: import pre-parameters: %w", err)
	}
	return nil
}
