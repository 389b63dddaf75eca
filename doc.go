// Package keyquorum is a library for threshold ECDSA custody.
//
// Each party's key share is sealed by that party's own HSM over PKCS#11
// (package [hsmshare]). Parties reach each other over libp2p (package
// [transport]) and run threshold key generation and signing (package [tss]),
// so two or more separated HSMs must cooperate before any signature exists.
// Package [wallet] turns threshold signatures into Bitcoin and Ethereum
// transactions.
//
// # Node
//
// A site runs one [Node]. [Open] wires everything from one [Config]: it
// opens the site's HSM token, loads (or, when asked, creates) the seal key and the
// identity key in it, opens the sealed store, starts the libp2p network whose
// identity is the HSM key, the Paillier pre-parameter pool and the protocol
// engine. The Node then offers the operations a custody team needs:
//
//   - [Node.Keygen]: a new M-of-N key with the other sites;
//   - [Node.Presign]: GG20 presignatures made ahead of time for one key,
//     signer set and derivation path;
//   - [Node.Sign]: a signature over a 32-byte digest, with GG20 from a ready
//     presignature when there is one (one round trip) or classic GG18
//     signing otherwise;
//   - [Node.SignPSBT] and [Node.SignEthereumTx]: whole transactions, through
//     package wallet;
//   - [Node.Reshare] and [Node.AuthorizeReshare]: a key moved to a new
//     committee and/or threshold with the same public key, joined by
//     another site only when its operator authorized exactly that reshare;
//   - [Node.RotateSealKey]: the store re-sealed under a new seal key, the
//     old key destroyed;
//   - [Node.GeneratePreParams] and [Node.ImportPreParams]: Paillier
//     pre-parameter sets made now or elsewhere;
//   - [Node.Status]: peers, keys, pools, reshares and the operations in
//     progress;
//   - [Node.Readiness]: whether the site can serve now, and which condition
//     fails.
//
// # Cold sites
//
// A member of the committee may have no network at all. [Config.BundlePeers]
// lists the members a site reaches through bundle files (package
// [github.com/keyquorum/keyquorum/offline]) instead of libp2p: on a cold site every other member, on an
// online site the cold ones. Each site enrols the others with the
// [BundlePeer] its [Node.BundleIdentity] returns. The engine's messages to a
// bundle peer wait for [Node.ExportBundle]; [Node.InspectBundle] shows an
// operator what a received bundle asks (the digests and intent of a
// signing request) and [Node.ImportBundle] hands it to the engine, which
// checks it as it checks a message from libp2p. A site with no libp2p peer
// in [Config.Peers] starts no libp2p host.
//
// With [Config.Metrics] set, the Node registers Prometheus collectors for
// its sessions, rounds, refusals, token operations, peers, pools,
// pre-parameters and audit log (the README lists every metric).
//
// [Node.Close] stops everything Open started and waits for it. The example node
// daemon (examples/kqnode, the kqnode binary) is a thin layer over Node.
//
// A user embeds these packages in a signing service, one process per site,
// each site with its own HSM. See the README for the security model.
package keyquorum
