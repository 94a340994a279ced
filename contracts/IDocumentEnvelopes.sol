// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IDocumentRegistry} from "./IDocumentRegistry.sol";

/**
 * @title IDocumentEnvelopes
 * @notice Public surface of docchain's multi-party signing envelopes: a document (by SHA-256) that named
 * signers must sign, optionally in order and by a deadline; signers may decline, the requester may void, and
 * the chain says when the envelope is complete.
 *
 * An envelope sits beside a {IDocumentRegistry}, never inside it: a signature is always an ordinary
 * registration in that registry, and the envelope counts it. So a registration signed for an envelope is
 * verified like any other, and the registry keeps its released code and its gas per document.
 *
 * Every action is an EIP-712 message signed off chain and relayable by anyone (gasless for the people who
 * sign): the requester's `EnvelopeRequest` creates the envelope, a signer's `Registration` (the registry's own
 * type, under the registry's domain) signs it, a signer's `Decline` declines it and the requester's `Void`
 * voids it. The domain binds this contract and the chain, so no signature works on another chain or
 * contract, and each type is distinct, so a signature for one action never works for another.
 *
 * The envelope's id is the EIP-712 digest of its request: the requester knows it before the request is
 * mined (a signing link can name it at once), a reorg that reorders transactions cannot change it, and it
 * differs on every chain and contract. An id is created once, so a request cannot be replayed; its `salt`
 * (any value the requester picks, random in docchain's clients) tells apart two requests otherwise alike.
 * No nonce is kept: it would cost a storage write per request (5,000 gas, 22,100 for a requester's first)
 * and make relayers submit one requester's requests in order, for a protection the id already gives.
 *
 * The rules a signature must meet, checked on chain before anything is recorded, each refused with its own
 * error: the envelope exists and is open (not complete {CompletedEnvelope}, declined {DeclinedEnvelope} or
 * voided {VoidedEnvelope}); the signer is named {NotASigner} and has not been counted {AlreadySigned};
 * the registration is made by the deadline {ExpiredEnvelope}; in an ordered envelope, every signer named
 * before this one has been counted and registered in an earlier block or the same one {OutOfOrder}.
 *
 * In an ordered envelope a signer's registration made before the previous signer's turn never counts (the
 * chain says they signed out of order), whether it was relayed through the envelope or not: the requester
 * voids such an envelope and asks again, unordered or in another order.
 */
interface IDocumentEnvelopes {
    // ------------------------------------------------------------------ errors

    /// @notice `signature` is not `signer`'s valid signature of the message about envelope `id`.
    error InvalidEnvelopeSignature(bytes32 id, address signer);

    /// @notice The signed message's `deadline` (for relaying it) has passed.
    error ExpiredSignature(uint256 deadline);

    /// @notice An envelope names between 1 and `max` signers; the request named `count`.
    error BadSignerCount(uint256 count, uint256 max);

    /// @notice The request names the zero address as its signer at `position` (0-based).
    error ZeroAddressSigner(uint256 position);

    /// @notice The request names `signer` twice.
    error DuplicateSigner(address signer);

    /// @notice No envelope has the id `id`.
    error UnknownEnvelope(bytes32 id);

    /// @notice The registration is of `docHash`, not of envelope `id`'s document.
    error WrongDocument(bytes32 id, bytes32 docHash);

    /// @notice `signer` is not one of envelope `id`'s signers.
    error NotASigner(bytes32 id, address signer);

    /// @notice `signer`'s signature already counts toward envelope `id`.
    error AlreadySigned(bytes32 id, address signer);

    /// @notice Envelope `id` is ordered and `expected` had to sign before `signer` did.
    error OutOfOrder(bytes32 id, address signer, address expected);

    /// @notice Envelope `id`'s `deadline` has passed (for a counted registration: it was made after it).
    error ExpiredEnvelope(bytes32 id, uint256 deadline);

    /// @notice Envelope `id` was declined by its signer `by`.
    error DeclinedEnvelope(bytes32 id, address by);

    /// @notice Envelope `id` was voided by its requester.
    error VoidedEnvelope(bytes32 id);

    /// @notice Envelope `id` already has every signature it needs.
    error CompletedEnvelope(bytes32 id);

    /// @notice The registry holds no registration of envelope `id`'s document by `signer`.
    error NoRegistration(bytes32 id, address signer);

    /// @notice `signer`'s registration of envelope `id`'s document is revoked, so it cannot count.
    error RevokedRegistration(bytes32 id, address signer);

    /// @notice `registry` has no code: the envelopes need a deployed registry.
    error NotARegistry(address registry);

    /// @notice Envelope `id` exists already: its request was submitted before.
    error EnvelopeExists(bytes32 id);

    // ------------------------------------------------------------------ structs

    /// @notice Where an envelope stands.
    /// @dev `Expired` is never stored: views report an open envelope whose deadline has passed as expired.
    enum Status {
        None,
        Open,
        Completed,
        Declined,
        Voided,
        Expired
    }

    /**
     * @notice The EIP-712 `EnvelopeRequest` message the requester signs.
     * @dev `signers` is hashed as EIP-712 arrays are: keccak256 of the 32-byte words of its addresses.
     * @param docHash SHA-256 of the document's bytes.
     * @param requester The account that asks for the signatures (an EOA or an ERC-1271 wallet); only it may
     * void the envelope. It need not be a signer.
     * @param signers The required signers, 1 to 16 (`MAX_SIGNERS`), distinct, none zero; in signing order
     * when `ordered`.
     * @param ordered Whether each signer must sign after the ones named before.
     * @param deadline Unix time after which no registration counts; zero for none.
     * @param salt Any value that makes the request unique (docchain's clients pick 32 random bytes).
     * @param requestDeadline Unix time after which the request can no longer be submitted.
     */
    struct EnvelopeRequest {
        bytes32 docHash;
        address requester;
        address[] signers;
        bool ordered;
        uint48 deadline;
        bytes32 salt;
        uint256 requestDeadline;
    }

    /// @notice A signer of an envelope and, once it counts, their registration's record in the registry.
    /// @param signer The signer.
    /// @param signed Whether the signer's registration counts toward the envelope.
    /// @param signedAt Block timestamp of the counted registration; zero until it counts.
    /// @param blockNumber Block of the counted registration; zero until it counts.
    /// @param revokedAt When the signer later revoked that registration in the registry; zero while valid.
    struct SignerState {
        address signer;
        bool signed;
        uint48 signedAt;
        uint48 blockNumber;
        uint48 revokedAt;
    }

    /// @notice An envelope as the views answer it.
    /// @param docHash The document.
    /// @param requester Who requested the signatures.
    /// @param status Where it stands; `Expired` for an open envelope past its deadline.
    /// @param ordered Whether signers sign in the order of `signers`.
    /// @param deadline Unix time after which no registration counts; zero for none.
    /// @param signers Every required signer, in the request's order.
    /// @param next The signer whose turn it is in an open ordered envelope; zero otherwise (an unordered
    /// envelope's pending signers may sign in any order).
    /// @param declinedBy The signer who declined; zero unless `status` is `Declined`.
    struct EnvelopeState {
        bytes32 docHash;
        address requester;
        Status status;
        bool ordered;
        uint48 deadline;
        SignerState[] signers;
        address next;
        address declinedBy;
    }

    // ------------------------------------------------------------------ events

    /// @notice `requester` created envelope `id` for `docHash`, naming `signers`.
    event EnvelopeCreated(
        bytes32 indexed id,
        bytes32 indexed docHash,
        address indexed requester,
        address[] signers,
        bool ordered,
        uint48 deadline
    );

    /// @notice `signer`'s registration, made at `signedAt`, counts toward envelope `id`.
    /// @param position The signer's 0-based place in the envelope's list.
    event EnvelopeSigned(bytes32 indexed id, address indexed signer, uint256 position, uint48 signedAt);

    /// @notice `signer` declined envelope `id`; `reasonHash` commits to their reason (zero for none).
    event EnvelopeDeclined(bytes32 indexed id, address indexed signer, bytes32 reasonHash);

    /// @notice The requester voided envelope `id`; `reasonHash` commits to their reason (zero for none).
    event EnvelopeVoided(bytes32 indexed id, bytes32 reasonHash);

    /// @notice Envelope `id` for `docHash` has every signature it needs, as of block `blockNumber`.
    event EnvelopeCompleted(bytes32 indexed id, bytes32 indexed docHash, uint256 blockNumber);

    // ------------------------------------------------------------------ external

    /**
     * @notice Creates the envelope `request` describes, signed by `request.requester`. Anyone may call it
     * (relayer).
     * @dev Reverts with {ExpiredSignature}, {BadSignerCount}, {ZeroAddressSigner}, {DuplicateSigner},
     * {ExpiredEnvelope} (a deadline already past), {EnvelopeExists} or {InvalidEnvelopeSignature}.
     * @param request The signed request.
     * @param signature 65-byte ECDSA signature, or any bytes the ERC-1271 wallet `request.requester` accepts.
     * @return id The envelope's id: the EIP-712 digest of `request` ({envelopeId}).
     */
    function create(EnvelopeRequest calldata request, bytes calldata signature) external returns (bytes32 id);

    /**
     * @notice Registers `reg` in the registry and counts it toward envelope `id`, once the envelope's rules
     * allow it. Anyone may call it (relayer).
     * @dev The rules are checked before the registry is called, so a refused signature leaves no record
     * anywhere. When the registry already holds a record of (`reg.docHash`, `reg.signer`), the registry
     * ignores `reg` and that record is counted instead, with the rules of {countRegistration}. The registry's
     * own errors ({IDocumentRegistry-InvalidSignature}, {IDocumentRegistry-ExpiredSignature}) pass through.
     * @param id The envelope.
     * @param reg The signer's registration of the envelope's document, signed under the registry's domain.
     * @param signature The registration's signature, as {IDocumentRegistry-register} takes it.
     */
    function sign(bytes32 id, IDocumentRegistry.Registration calldata reg, bytes calldata signature) external;

    /**
     * @notice Counts toward envelope `id` the registration `signer` made directly in the registry (a plain
     * submission). Anyone may call it.
     * @dev The rules apply to the registration's own time: made by the deadline; in an ordered envelope, the
     * previous signer already counted, and registered in an earlier block than `signer` or the same one. A
     * registration made before the envelope was created counts: it is the same signer's signature of the same
     * document.
     * @param id The envelope.
     * @param signer A named signer with a valid record of the envelope's document in the registry.
     */
    function countRegistration(bytes32 id, address signer) external;

    /**
     * @notice Declines envelope `id` on behalf of `signer`, a named signer who has not signed, with an
     * EIP-712 `Decline` they signed. Anyone may relay it. The envelope is closed for good.
     * @param id The envelope, open and not past its deadline.
     * @param signer The declining signer.
     * @param reasonHash Hash of the reason given off chain; zero for none.
     * @param deadline Unix time after which the signature can no longer be submitted.
     * @param signature Signature by `signer` over the `Decline` message.
     */
    function decline(
        bytes32 id,
        address signer,
        bytes32 reasonHash,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @notice Voids envelope `id` with an EIP-712 `Void` its requester signed. Anyone may relay it. The
     * envelope is closed for good.
     * @dev An open envelope may be voided, past its deadline too; a complete, declined or voided one may not.
     * @param id The envelope.
     * @param reasonHash Hash of the reason given off chain; zero for none.
     * @param deadline Unix time after which the signature can no longer be submitted.
     * @param signature Signature by the envelope's requester over the `Void` message.
     */
    function void(bytes32 id, bytes32 reasonHash, uint256 deadline, bytes calldata signature) external;

    // ------------------------------------------------------------------ views

    /**
     * @notice Envelope `id` with each signer's counted registration; `status` None when it does not exist.
     * @param id The envelope.
     * @return The envelope's state.
     */
    function envelopeOf(bytes32 id) external view returns (EnvelopeState memory);

    /**
     * @notice The id `request` creates: its EIP-712 digest, which the requester signs.
     * @param request The request.
     * @return The id, `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(request))`.
     */
    function envelopeId(EnvelopeRequest calldata request) external view returns (bytes32);

    /**
     * @notice The EIP-712 digest a signer signs to decline, for off-chain code to check itself against.
     * @param id The envelope.
     * @param signer The declining signer.
     * @param reasonHash Hash of the reason.
     * @param deadline The signature's deadline.
     * @return The digest of `Decline(id, signer, reasonHash, deadline)`.
     */
    function declineDigest(
        bytes32 id,
        address signer,
        bytes32 reasonHash,
        uint256 deadline
    ) external view returns (bytes32);

    /**
     * @notice The EIP-712 digest the requester signs to void, for off-chain code to check itself against.
     * @param id The envelope.
     * @param reasonHash Hash of the reason.
     * @param deadline The signature's deadline.
     * @return The digest of `Void(id, reasonHash, deadline)`.
     */
    function voidDigest(bytes32 id, bytes32 reasonHash, uint256 deadline) external view returns (bytes32);

    /**
     * @notice The registry whose registrations the envelopes count.
     * @return The registry.
     */
    // solhint-disable-next-line func-name-mixedcase
    function REGISTRY() external view returns (IDocumentRegistry);

    /**
     * @notice The EIP-712 domain separator of this contract (binds name, version, chain id, address).
     * @return The domain separator.
     */
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
