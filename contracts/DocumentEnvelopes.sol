// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IDocumentEnvelopes} from "./IDocumentEnvelopes.sol";
import {IDocumentRegistry} from "./IDocumentRegistry.sol";

/**
 * @title DocumentEnvelopes
 * @notice docchain's multi-party signing envelopes over one {IDocumentRegistry}. See {IDocumentEnvelopes}.
 * @dev Storage per envelope: two slots (the document, then requester, deadline, status, order flag, signer
 * count, decliner and the bitmap of counted signers) and one slot per signer. Signing times are not copied:
 * a counted signer's time is the registry's record, which {envelopeOf} reads. The bitmap's 16 bits bound the
 * signer count ({MAX_SIGNERS}), which also bounds the lookup of a signer's place to 16 storage reads.
 *
 * The only external calls go to the registry, fixed at deployment. The registry's one outward call is
 * OpenZeppelin's ERC-1271 check, a `staticcall`, so nothing can re-enter while the envelopes' state is
 * between two writes; the state is written before the registry is called all the same.
 */
contract DocumentEnvelopes is IDocumentEnvelopes, EIP712 {
    /// @notice The most signers one envelope may name.
    uint256 public constant MAX_SIGNERS = 16;

    /// @dev keccak256("EnvelopeRequest(bytes32 docHash,address requester,address[] signers,bool ordered,uint48 deadline,bytes32 salt,uint256 requestDeadline)")
    bytes32 public constant ENVELOPE_REQUEST_TYPEHASH =
        keccak256(
            "EnvelopeRequest(bytes32 docHash,address requester,address[] signers,bool ordered,uint48 deadline,bytes32 salt,uint256 requestDeadline)"
        );

    /// @dev keccak256("Decline(bytes32 envelopeId,address signer,bytes32 reasonHash,uint256 deadline)")
    bytes32 public constant DECLINE_TYPEHASH =
        keccak256("Decline(bytes32 envelopeId,address signer,bytes32 reasonHash,uint256 deadline)");

    /// @dev keccak256("Void(bytes32 envelopeId,bytes32 reasonHash,uint256 deadline)")
    bytes32 public constant VOID_TYPEHASH = keccak256("Void(bytes32 envelopeId,bytes32 reasonHash,uint256 deadline)");

    /// @dev Two slots: the document, then everything else packed into 256 bits.
    struct Envelope {
        bytes32 docHash;
        address requester;
        uint48 deadline;
        Status status; // Open, Completed, Declined or Voided (None: no envelope)
        bool ordered;
        uint8 signerCount;
        uint8 declinedBy; // 0-based place of the signer who declined, when status is Declined
        uint16 signedMask; // bit i set once the signer at place i counts
    }

    /// @inheritdoc IDocumentEnvelopes
    IDocumentRegistry public immutable REGISTRY;

    mapping(bytes32 id => Envelope) private _envelopes;

    mapping(bytes32 id => address[MAX_SIGNERS]) private _signers;

    constructor(IDocumentRegistry registry) EIP712("docchain envelopes", "1") {
        if (address(registry).code.length == 0) revert NotARegistry(address(registry));
        REGISTRY = registry;
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IDocumentEnvelopes
    function create(EnvelopeRequest calldata request, bytes calldata signature) external returns (bytes32 id) {
        uint48 now_ = _now();
        if (request.requestDeadline < now_) revert ExpiredSignature(request.requestDeadline);
        uint256 count = request.signers.length;
        if (count == 0 || count > MAX_SIGNERS) revert BadSignerCount(count, MAX_SIGNERS);
        id = _envelopeId(request);
        if (request.deadline != 0 && request.deadline < now_) revert ExpiredEnvelope(id, request.deadline);
        if (_envelopes[id].status != Status.None) revert EnvelopeExists(id);
        if (!SignatureChecker.isValidSignatureNow(request.requester, id, signature)) {
            revert InvalidEnvelopeSignature(id, request.requester);
        }
        for (uint256 i = 0; i < count; ++i) {
            address signer = request.signers[i];
            if (signer == address(0)) revert ZeroAddressSigner(i);
            for (uint256 j = 0; j < i; ++j) {
                if (request.signers[j] == signer) revert DuplicateSigner(signer);
            }
            // Written through the mapping, not a local storage pointer, which slither does not follow.
            _signers[id][i] = signer;
        }
        _envelopes[id] = Envelope({
            docHash: request.docHash,
            requester: request.requester,
            deadline: request.deadline,
            status: Status.Open,
            ordered: request.ordered,
            signerCount: uint8(count),
            declinedBy: 0,
            signedMask: 0
        });
        emit EnvelopeCreated(
            id,
            request.docHash,
            request.requester,
            request.signers,
            request.ordered,
            request.deadline
        );
    }

    /// @inheritdoc IDocumentEnvelopes
    function sign(bytes32 id, IDocumentRegistry.Registration calldata reg, bytes calldata signature) external {
        Envelope memory envelope = _open(id);
        _checkNotExpired(id, envelope);
        if (reg.docHash != envelope.docHash) revert WrongDocument(id, reg.docHash);
        uint256 position = _turn(id, envelope, reg.signer);
        _markSigned(id, envelope, position);
        uint48 signedAt = _now();
        if (!REGISTRY.register(reg, signature)) {
            // The registry already held a record and ignored `reg` (and its signature): that record counts.
            signedAt = _checkRecord(id, envelope, position, reg.signer);
        }
        _emitSigned(id, envelope, position, reg.signer, signedAt);
    }

    /// @inheritdoc IDocumentEnvelopes
    function countRegistration(bytes32 id, address signer) external {
        Envelope memory envelope = _open(id);
        uint256 position = _turn(id, envelope, signer);
        uint48 signedAt = _checkRecord(id, envelope, position, signer);
        _markSigned(id, envelope, position);
        _emitSigned(id, envelope, position, signer, signedAt);
    }

    /// @inheritdoc IDocumentEnvelopes
    function decline(
        bytes32 id,
        address signer,
        bytes32 reasonHash,
        uint256 deadline,
        bytes calldata signature
    ) external {
        Envelope memory envelope = _open(id);
        _checkNotExpired(id, envelope);
        if (deadline < _now()) revert ExpiredSignature(deadline);
        uint256 position = _place(id, envelope, signer);
        if (envelope.signedMask & (uint256(1) << position) != 0) revert AlreadySigned(id, signer);
        bytes32 digest = _declineDigest(id, signer, reasonHash, deadline);
        if (!SignatureChecker.isValidSignatureNow(signer, digest, signature)) {
            revert InvalidEnvelopeSignature(id, signer);
        }
        Envelope storage stored = _envelopes[id];
        stored.status = Status.Declined;
        stored.declinedBy = uint8(position);
        emit EnvelopeDeclined(id, signer, reasonHash);
    }

    /// @inheritdoc IDocumentEnvelopes
    function void(bytes32 id, bytes32 reasonHash, uint256 deadline, bytes calldata signature) external {
        Envelope memory envelope = _open(id);
        if (deadline < _now()) revert ExpiredSignature(deadline);
        bytes32 digest = _voidDigest(id, reasonHash, deadline);
        if (!SignatureChecker.isValidSignatureNow(envelope.requester, digest, signature)) {
            revert InvalidEnvelopeSignature(id, envelope.requester);
        }
        _envelopes[id].status = Status.Voided;
        emit EnvelopeVoided(id, reasonHash);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IDocumentEnvelopes
    function envelopeOf(bytes32 id) external view returns (EnvelopeState memory state) {
        Envelope memory envelope = _envelopes[id];
        state.docHash = envelope.docHash;
        state.requester = envelope.requester;
        state.status = envelope.status;
        state.ordered = envelope.ordered;
        state.deadline = envelope.deadline;
        state.signers = new SignerState[](envelope.signerCount);
        address[MAX_SIGNERS] storage signers = _signers[id];
        for (uint256 i = 0; i < envelope.signerCount; ++i) {
            SignerState memory signer = state.signers[i];
            signer.signer = signers[i];
            if (envelope.signedMask & (uint256(1) << i) != 0) {
                IDocumentRegistry.Record memory record = REGISTRY.recordOf(envelope.docHash, signers[i]);
                signer.signed = true;
                signer.signedAt = record.registeredAt;
                signer.blockNumber = record.blockNumber;
                signer.revokedAt = record.revokedAt;
            }
        }
        if (envelope.status == Status.Open) {
            if (_expired(envelope)) {
                state.status = Status.Expired;
            } else if (envelope.ordered) {
                state.next = signers[_firstUnsigned(envelope.signedMask)];
            }
        } else if (envelope.status == Status.Declined) {
            state.declinedBy = signers[envelope.declinedBy];
        }
    }

    /// @inheritdoc IDocumentEnvelopes
    function envelopeId(EnvelopeRequest calldata request) external view returns (bytes32) {
        return _envelopeId(request);
    }

    /// @inheritdoc IDocumentEnvelopes
    function declineDigest(
        bytes32 id,
        address signer,
        bytes32 reasonHash,
        uint256 deadline
    ) external view returns (bytes32) {
        return _declineDigest(id, signer, reasonHash, deadline);
    }

    /// @inheritdoc IDocumentEnvelopes
    function voidDigest(bytes32 id, bytes32 reasonHash, uint256 deadline) external view returns (bytes32) {
        return _voidDigest(id, reasonHash, deadline);
    }

    /// @inheritdoc IDocumentEnvelopes
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internal

    /// @dev The clock every rule reads; overridable so tests can control time.
    function _now() internal view virtual returns (uint48) {
        return uint48(block.timestamp);
    }

    // ------------------------------------------------------------------ private

    /// @dev Envelope `id`, which must exist and be open (it may be past its deadline).
    function _open(bytes32 id) private view returns (Envelope memory envelope) {
        envelope = _envelopes[id];
        Status status = envelope.status;
        if (status == Status.Open) return envelope;
        if (status == Status.None) revert UnknownEnvelope(id);
        if (status == Status.Completed) revert CompletedEnvelope(id);
        if (status == Status.Declined) revert DeclinedEnvelope(id, _signers[id][envelope.declinedBy]);
        revert VoidedEnvelope(id);
    }

    function _checkNotExpired(bytes32 id, Envelope memory envelope) private view {
        if (_expired(envelope)) revert ExpiredEnvelope(id, envelope.deadline);
    }

    function _expired(Envelope memory envelope) private view returns (bool) {
        return envelope.deadline != 0 && envelope.deadline < _now();
    }

    /// @dev `signer`'s place when it is their turn; otherwise reverts with the rule they break. The usual case
    /// reads only the places still to sign: in an ordered envelope, just the first of them.
    function _turn(bytes32 id, Envelope memory envelope, address signer) private view returns (uint256) {
        address[MAX_SIGNERS] storage signers = _signers[id];
        uint256 mask = envelope.signedMask;
        uint256 first = _firstUnsigned(mask);
        if (envelope.ordered) {
            if (signers[first] == signer) return first;
        } else {
            for (uint256 i = first; i < envelope.signerCount; ++i) {
                if (mask & (uint256(1) << i) == 0 && signers[i] == signer) return i;
            }
        }
        uint256 position = _place(id, envelope, signer);
        if (mask & (uint256(1) << position) != 0) revert AlreadySigned(id, signer);
        revert OutOfOrder(id, signer, signers[first]);
    }

    /// @dev `signer`'s place in the envelope's list; reverts with {NotASigner} when they are not in it.
    function _place(bytes32 id, Envelope memory envelope, address signer) private view returns (uint256) {
        address[MAX_SIGNERS] storage signers = _signers[id];
        for (uint256 i = 0; i < envelope.signerCount; ++i) {
            if (signers[i] == signer) return i;
        }
        revert NotASigner(id, signer);
    }

    /// @dev The time of `signer`'s record of the envelope's document, once it meets the rules a registration
    /// must meet to count: it exists, is not revoked, was made by the deadline and, in an ordered envelope,
    /// in the previous signer's (counted) block or a later one. Blocks, not timestamps, order the records: two
    /// blocks may share a timestamp, and within a block the registry keeps no order.
    function _checkRecord(
        bytes32 id,
        Envelope memory envelope,
        uint256 position,
        address signer
    ) private view returns (uint48) {
        IDocumentRegistry.Record memory record = REGISTRY.recordOf(envelope.docHash, signer);
        if (record.registeredAt == 0) revert NoRegistration(id, signer);
        if (record.revokedAt != 0) revert RevokedRegistration(id, signer);
        if (envelope.deadline != 0 && record.registeredAt > envelope.deadline) {
            revert ExpiredEnvelope(id, envelope.deadline);
        }
        if (envelope.ordered && position != 0) {
            address previous = _signers[id][position - 1];
            if (REGISTRY.recordOf(envelope.docHash, previous).blockNumber > record.blockNumber) {
                revert OutOfOrder(id, signer, previous);
            }
        }
        return record.registeredAt;
    }

    /// @dev Records that the signer at `position` counts, and completes the envelope when they were the last.
    function _markSigned(bytes32 id, Envelope memory envelope, uint256 position) private {
        uint16 mask = envelope.signedMask | uint16(uint256(1) << position);
        Envelope storage stored = _envelopes[id];
        stored.signedMask = mask;
        envelope.signedMask = mask;
        if (mask == (uint256(1) << envelope.signerCount) - 1) stored.status = Status.Completed;
    }

    function _emitSigned(
        bytes32 id,
        Envelope memory envelope,
        uint256 position,
        address signer,
        uint48 signedAt
    ) private {
        emit EnvelopeSigned(id, signer, position, signedAt);
        if (envelope.signedMask == (uint256(1) << envelope.signerCount) - 1) {
            emit EnvelopeCompleted(id, envelope.docHash, block.number);
        }
    }

    /// @dev The place of the first signer not yet counted; in an ordered envelope, whose turn it is.
    function _firstUnsigned(uint256 mask) private pure returns (uint256 i) {
        while (mask & (uint256(1) << i) != 0) ++i;
    }

    function _envelopeId(EnvelopeRequest calldata request) private view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(
                    abi.encode(
                        ENVELOPE_REQUEST_TYPEHASH,
                        request.docHash,
                        request.requester,
                        keccak256(abi.encodePacked(request.signers)),
                        request.ordered,
                        request.deadline,
                        request.salt,
                        request.requestDeadline
                    )
                )
            );
    }

    function _declineDigest(
        bytes32 id,
        address signer,
        bytes32 reasonHash,
        uint256 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DECLINE_TYPEHASH, id, signer, reasonHash, deadline)));
    }

    function _voidDigest(bytes32 id, bytes32 reasonHash, uint256 deadline) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOID_TYPEHASH, id, reasonHash, deadline)));
    }
}
