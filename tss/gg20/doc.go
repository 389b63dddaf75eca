// Package gg20 is the cryptographic core of GG20 threshold ECDSA signing
// (Gennaro & Goldfeder, "One Round Threshold ECDSA with Identifiable Abort",
// eprint 2020/540) on secp256k1, for keys made by tss-lib v2.0.2 keygen.
//
// Signing is split in two. Presigning (six rounds, §3 Phases 1–6) runs before
// the message is known and leaves each signer a Presignature: its secret
// shares kᵢ, σᵢ and the public R = g^{1/k}, r, R̄ⱼ = R^{kⱼ}, Sⱼ = R^{σⱼ}.
// Signing (one round, Phase 7) is then local: each signer sends
// sᵢ = m·kᵢ + r·σᵢ and anyone adds the shares.
//
// # Driving a run
//
// A Presigner is a deterministic state machine with no goroutines or I/O of
// its own: Start returns this party's round-1 message, Handle takes each
// message from another signer and returns this party's next messages when a
// round is complete, Done and Presignature give the result. Every message is
// a broadcast (Message.To == Broadcast) and the session layer must deliver
// the same bytes to every signer (echo broadcast): the blame rounds depend on
// all signers judging the same transcript. Waiting tells which signers a
// round still waits for, so a session layer can time out and name them.
//
//	round  message (broadcast)                              checks by receivers
//	1      Cᵢ = Com(Γᵢ), cᵢ = Enc_i(kᵢ), range proof per j  range proof vs own Ñ
//	2      MtA(kⱼ,γᵢ), MtAwc(kⱼ,wᵢ) responses + Bob proofs   Bob proofs (Alice j)
//	3      δᵢ, Tᵢ = g^{σᵢ}h^{lᵢ}, proof of opening of Tᵢ     proof of Tⱼ
//	4      Γᵢ, opening of Cᵢ, proof of γᵢ                    decommitment, proof
//	5      R̄ᵢ = R^{kᵢ}, PDL-with-slack proof per j          PDL proof vs own Ñ; ΠR̄ⱼ = g
//	6      Sᵢ = R^{σᵢ}, proof that Sᵢ, Tᵢ share σᵢ           proof; ΠSⱼ = y'
//
// The MtA proofs use tss-lib's formats and equations (a tss-lib proof
// verifies here and the other way round), with the session bound in. Each
// party encrypts kᵢ once for all peers and makes the range and PDL proofs
// against each verifier's own ring-Pedersen parameters. A party verifying a
// proof made against its own Ñ, or decrypting under its own Paillier key,
// uses the Chinese remainder theorem (see internal/arith).
//
// # Binding
//
// Every proof, commitment and hash of a run is bound to a context hash of
// Config.SessionID, the signers and their Paillier and ring-Pedersen
// parameters and weighted public shares, the (tweaked) public key and the
// tweak, plus the proof's prover and verifier. A presignature is therefore
// for one key, one signer set and one derivation tweak, fixed before R is
// known; a tweak chosen after seeing R (the setting of Groth & Shoup, eprint
// 2021/1330) is not possible.
//
// # Identifiable abort
//
// A failed check returns a *CulpritError that names the signers at fault and
// wraps the sentinel of the check (ErrRangeProof, ErrMtAProof, ErrTProof,
// ErrDecommit, ErrGammaProof, ErrPDLProof, ErrSTProof, ErrMalformed ...).
// Bob's MtA proofs are checked only by their Alice, so for those the
// culprit is named by that signer; every other check is made by every
// signer on broadcast data. If ΠR̄ⱼ ≠ g or ΠSⱼ ≠ y' although every proof
// passed, the run enters a blame round (GG20 §4.3, types 5 and 7): the
// signers reveal their openings for this abandoned run and the run ends with
// a *CulpritError wrapping ErrRbarProduct or ErrSProduct and naming whoever's
// openings contradict the transcript. Online, Combine names every signer
// whose sⱼ fails R^{sⱼ} = R̄ⱼ^m·Sⱼ^r (ErrBadShare).
//
// # Once only
//
// A presignature may sign one digest, once. SignShare wipes kᵢ and σᵢ; a
// store of presignatures must mark one used, durably, before releasing sᵢ,
// and must never restore one from a backup.
package gg20
