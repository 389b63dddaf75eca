// Package gg20 is the cryptographic core of GG20 threshold ECDSA signing
// (Gennaro & Goldfeder, "One Round Threshold ECDSA with Identifiable Abort",
// eprint 2020/540) on secp256k1, for keys made by tss-lib v2.0.2 keygen.
//
// Signing is split in two. Presigning (six rounds, §3 Phases 1–6) runs before
// the message is known and leaves each signer a [Presignature]: its secret
// shares kᵢ, σᵢ and the public R = g^{1/k}, r, R̄ⱼ = R^{kⱼ}, Sⱼ = R^{σⱼ}.
// Signing (one round, Phase 7) is then local: each signer sends
// sᵢ = m·kᵢ + r·σᵢ and anyone adds the shares.
//
// # Driving a run
//
// A [Presigner] is a deterministic state machine with no goroutines or I/O of
// its own: [Presigner.Start] returns this party's round-1 message,
// [Presigner.Handle] takes each message from another signer and returns this
// party's next messages when a round is complete, [Presigner.Done] and
// [Presigner.Presignature] give the result. Every message is a broadcast
// ([Message.To] == [Broadcast]) and the session layer must deliver the same
// bytes to every signer (echo broadcast), and at most one message per signer
// and round: complaints and the blame rounds depend on all signers judging
// the same transcript. [Presigner.Waiting] tells which signers a round still
// waits for, so a session layer can time out and name them.
//
//	round  message (broadcast)                              checks by receivers
//	1      Cᵢ = Com(Γᵢ), cᵢ = Enc_i(kᵢ), range proof per j  range proof for it (own Ñ)
//	2      MtA(kⱼ,γᵢ), MtAwc(kⱼ,wᵢ) responses + Bob proofs   Bob proofs for it (as Alice)
//	3      δᵢ, Tᵢ = g^{σᵢ}h^{lᵢ}, proof of opening of Tᵢ     proof of Tⱼ
//	4      Γᵢ, opening of Cᵢ, proof of γᵢ                    decommitment, proof
//	5      R̄ᵢ = R^{kᵢ}, PDL-with-slack proof per j          PDL proof for it (own Ñ); ΠR̄ⱼ = g
//	6      Sᵢ = R^{σᵢ}, proof that Sᵢ, Tᵢ share σᵢ           proof; ΠSⱼ = y'
//
// A signer whose proof of round 1, 2 or 5 failed sends a complaint in
// place of its next message (round 2, 3, or 6 / [RoundRevealRbar]); see
// Identifiable abort.
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
// [Config.SessionID], the signers and their Paillier and ring-Pedersen
// parameters and weighted public shares, the (tweaked) public key and the
// tweak, plus the proof's prover and verifier. A presignature is therefore
// for one key, one signer set and one derivation tweak, fixed before R is
// known; a tweak chosen after seeing R (the setting of Groth & Shoup, eprint
// 2021/1330) is not possible.
//
// # Identifiable abort
//
// A failed check returns a *[CulpritError] that names the signers at fault
// and wraps the sentinel of the check ([ErrRangeProof], [ErrMtAProof],
// [ErrTProof], [ErrDecommit], [ErrGammaProof], [ErrPDLProof], [ErrSTProof],
// [ErrFalseComplaint], [ErrMalformed] ...). Each verdict is computed from
// broadcast messages, which all signers hold alike, so that every honest
// signer names the same culprit and none names an honest one.
//
// The proofs of rounds 3, 4 and 6 are checked by every signer. The range
// proofs (round 1), Bob's MtA proofs (round 2) and the PDL proofs (round 5)
// are made once per verifier, against that verifier's ring-Pedersen
// parameters (round 2: under its Paillier key, as Alice), and travel in
// the prover's broadcast, one slot per verifier. Only the designated
// verifier V checks its slot, the check it can make with the CRT over its
// own Ñ and Paillier key. A prover that spoils only V's slot is caught by V
// alone, so V complains: in place of its message of the next round it
// broadcasts a complaint naming the provers (a complaint that accuses its
// sender or follows a round without such proofs names its sender as
// malformed or false). Every other signer checks the
// disputed slots itself, on the broadcast it already holds, and the round
// ends with the verdict: a failed proof names its prover, with that proof's
// sentinel; a valid one names V (ErrFalseComplaint). [CulpritError.Round] is
// the round of the disputed proofs. The round with complaints is decided as
// soon as every signer has sent its message for it, except signers already
// proven to have cheated: those are not waited for. No signer can be a
// round ahead of a complaint, since no one can finish that round without
// the complainer's message; and a signer sends a complaint or its next
// message, never both. With one cheater every honest signer decides on the
// same findings and names exactly the cheater. With several cheaters each
// honest signer still names only cheaters, but a verdict may miss a cheater
// that only another cheater's complaint exposed, depending on which
// messages arrived first.
//
// The alternative — every signer checks every slot — needs no complaints
// but costs every signer (n−1)(n−2) extra verifications per proof type and
// run, none of which can use the CRT. Measured on a 2-core machine with
// BenchmarkPresign3Signers (all three signers of a 2-of-3 key in one
// process, median of four interleaved runs), presigning took about 1,270
// ms of CPU time per run that way against about 850 ms before (+50%),
// growing quadratically with the signers. Complaints leave the honest path
// at its old cost (about 850 ms; BenchmarkPresign2of3, where no third-party
// slots exist, is unchanged at about 290 ms) and cost the extra checks only
// in a run where someone complains, which ends that run.
//
// If ΠR̄ⱼ ≠ g or ΠSⱼ ≠ y' although every proof passed, the run enters a blame
// round (GG20 §4.3, types 5 and 7): the signers reveal their openings for
// this abandoned run and the run ends with a *CulpritError wrapping
// [ErrRbarProduct] or [ErrSProduct] and naming whoever's openings contradict
// the transcript. Online, [Presignature.Combine] names every signer whose sⱼ
// fails R^{sⱼ} = R̄ⱼ^m·Sⱼ^r ([ErrBadShare]).
//
// # Once only
//
// A presignature may sign one digest, once. [Presignature.SignShare] wipes kᵢ
// and σᵢ; a store of presignatures must mark one used, durably, before
// releasing sᵢ, and must never restore one from a backup.
package gg20
