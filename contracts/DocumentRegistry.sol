// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IDocumentRegistry} from "./IDocumentRegistry.sol";

/**
 * @title DocumentRegistry
 * @notice docchain's registry of signed documents. See {IDocumentRegistry}.
 * @dev Gas is a headline figure: one storage slot per record (or per Merkle root), everything else in
 * calldata and events. The dispatcher compares selectors in ascending order, 22 gas each, so the Merkle entry
 * points take argument orders (and `leafHash` its name) whose selectors sort after `register` and
 * `registerBatch`: only `anchorRoot`, whose signature is fixed, sorts before them.
 */
contract DocumentRegistry is IDocumentRegistry, EIP712, Nonces {
    /// @dev keccak256("Registration(bytes32 docHash,address signer,bytes32 metadataHash,bytes32 supersedes,uint256 deadline)")
    bytes32 public constant REGISTRATION_TYPEHASH =
        keccak256("Registration(bytes32 docHash,address signer,bytes32 metadataHash,bytes32 supersedes,uint256 deadline)");

    /// @dev keccak256("Revocation(bytes32 docHash,address signer,uint256 nonce,uint256 deadline)")
    bytes32 public constant REVOCATION_TYPEHASH =
        keccak256("Revocation(bytes32 docHash,address signer,uint256 nonce,uint256 deadline)");

    mapping(bytes32 docHash => mapping(address signer => Record)) private _records;

    mapping(bytes32 root => Anchor) private _anchors;

    constructor() EIP712("docchain", "1") {}

    // ------------------------------------------------------------------ external

    /// @inheritdoc IDocumentRegistry
    function register(Registration calldata reg, bytes calldata signature) external returns (bool recorded) {
        return _register(reg, signature);
    }

    /// @inheritdoc IDocumentRegistry
    function registerBatch(CompactSignedRegistration[] calldata regs) external returns (uint256 recorded) {
        for (uint256 i = 0; i < regs.length; ++i) {
            if (_registerCompact(regs[i])) {
                unchecked {
                    ++recorded;
                }
            }
        }
    }

    /// @inheritdoc IDocumentRegistry
    function revoke(bytes32 docHash) external {
        _revoke(docHash, msg.sender);
    }

    /// @inheritdoc IDocumentRegistry
    function revokeBySig(
        bytes32 docHash,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkRevocation(docHash, signer, nonce, deadline, signature);
        _revoke(docHash, signer);
    }

    /// @inheritdoc IDocumentRegistry
    function anchorRoot(bytes32 root, uint256 leafCount) external {
        if (leafCount == 0) revert EmptyTree(root);
        if (_anchors[root].anchoredAt != 0) revert RootAlreadyAnchored(root);
        _anchors[root] = Anchor({anchoredAt: _now(), blockNumber: uint48(block.number)});
        emit RootAnchored(root, leafCount, msg.sender);
    }

    /// @inheritdoc IDocumentRegistry
    function revokeMerkleBySig(
        bytes32 root,
        MerkleLeaf calldata leaf,
        bytes32[] calldata proof,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _proveInclusion(_leafHash(leaf.docHash, leaf.signer, leaf.metadataHash, leaf.signatureHash), proof, root);
        _checkRevocation(leaf.docHash, leaf.signer, nonce, deadline, signature);
        Record storage record = _records[leaf.docHash][leaf.signer];
        if (record.revokedAt != 0) revert AlreadyRevoked(leaf.docHash, leaf.signer);
        _markRevoked(record, leaf.docHash, leaf.signer);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IDocumentRegistry
    function recordOf(bytes32 docHash, address signer) external view returns (Record memory) {
        return _records[docHash][signer];
    }

    /// @inheritdoc IDocumentRegistry
    function isValidRegistration(Registration calldata reg, bytes calldata signature) external view returns (bool) {
        return _isValidSignature(reg.signer, _registrationDigest(reg), signature);
    }

    /// @inheritdoc IDocumentRegistry
    function anchorOf(bytes32 root) external view returns (Anchor memory) {
        return _anchors[root];
    }

    /// @inheritdoc IDocumentRegistry
    function verifyMerkleRegistration(
        bytes32 root,
        Registration calldata reg,
        bytes calldata signature,
        bytes32[] calldata proof
    ) external view returns (Record memory record) {
        bytes32 leaf = _leafHash(reg.docHash, reg.signer, reg.metadataHash, keccak256(signature));
        Anchor memory anchor = _proveInclusion(leaf, proof, root);
        // The root's anchoring is when the registration was submitted: its deadline bounds that moment.
        if (reg.deadline < anchor.anchoredAt) revert ExpiredSignature(reg.deadline);
        if (!_isValidSignature(reg.signer, _registrationDigest(reg), signature)) {
            revert InvalidSignature(reg.docHash, reg.signer);
        }
        return Record(anchor.anchoredAt, anchor.blockNumber, _records[reg.docHash][reg.signer].revokedAt);
    }

    /// @inheritdoc IDocumentRegistry
    function leafHash(MerkleLeaf calldata leaf) external pure returns (bytes32) {
        return _leafHash(leaf.docHash, leaf.signer, leaf.metadataHash, leaf.signatureHash);
    }

    /// @inheritdoc IDocumentRegistry
    function registrationDigest(Registration calldata reg) external view returns (bytes32) {
        return _registrationDigest(reg);
    }

    /// @inheritdoc IDocumentRegistry
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internal

    /// @dev The clock every record reads; overridable so tests can control time.
    function _now() internal view virtual returns (uint48) {
        return uint48(block.timestamp);
    }

    // ------------------------------------------------------------------ private

    function _register(Registration calldata reg, bytes calldata signature) private returns (bool) {
        Record storage record = _records[reg.docHash][reg.signer];
        // An existing record (even revoked) makes the call a no-op: no state change, so no signature check needed.
        if (record.registeredAt != 0) return false;
        if (!_isValidSignature(reg.signer, _checkedDigest(reg), signature)) revert InvalidSignature(reg.docHash, reg.signer);
        _store(record, reg);
        return true;
    }

    function _registerCompact(CompactSignedRegistration calldata item) private returns (bool) {
        Registration calldata reg = item.registration;
        Record storage record = _records[reg.docHash][reg.signer];
        if (record.registeredAt != 0) return false;
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(_checkedDigest(reg), item.r, item.vs);
        if (err != ECDSA.RecoverError.NoError || recovered != reg.signer) revert InvalidSignature(reg.docHash, reg.signer);
        _store(record, reg);
        return true;
    }

    function _checkedDigest(Registration calldata reg) private view returns (bytes32) {
        if (reg.deadline < _now()) revert ExpiredSignature(reg.deadline);
        return _registrationDigest(reg);
    }

    function _store(Record storage record, Registration calldata reg) private {
        record.registeredAt = _now();
        record.blockNumber = uint48(block.number);
        emit Registered(reg.docHash, reg.signer, reg.metadataHash, reg.supersedes);
    }

    function _revoke(bytes32 docHash, address signer) private {
        Record storage record = _records[docHash][signer];
        if (record.registeredAt == 0) revert NotRegistered(docHash, signer);
        if (record.revokedAt != 0) revert AlreadyRevoked(docHash, signer);
        _markRevoked(record, docHash, signer);
    }

    function _markRevoked(Record storage record, bytes32 docHash, address signer) private {
        record.revokedAt = _now();
        emit Revoked(docHash, signer);
    }

    /// @dev Checks a signed `Revocation` and consumes its nonce; reverts unless it is valid now.
    function _checkRevocation(
        bytes32 docHash,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (deadline < _now()) revert ExpiredSignature(deadline);
        _useCheckedNonce(signer, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(REVOCATION_TYPEHASH, docHash, signer, nonce, deadline)));
        if (!_isValidSignature(signer, digest, signature)) revert InvalidSignature(docHash, signer);
    }

    /// @dev The anchor of `root`, once `proof` shows `leaf` is one of its leaves (sorted-pair hashing).
    function _proveInclusion(
        bytes32 leaf,
        bytes32[] calldata proof,
        bytes32 root
    ) private view returns (Anchor memory anchor) {
        anchor = _anchors[root];
        if (anchor.anchoredAt == 0) revert RootNotAnchored(root);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert NotInTree(leaf, root);
    }

    /// @dev OpenZeppelin `StandardMerkleTree`'s leaf of `["bytes32","address","bytes32","bytes32"]`.
    function _leafHash(
        bytes32 docHash,
        address signer,
        bytes32 metadataHash,
        bytes32 signatureHash
    ) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(docHash, signer, metadataHash, signatureHash))));
    }

    /// @dev OpenZeppelin's `SignatureChecker.isValidSignatureNow` reads the signer's code size first, a cold
    /// account access (2,600 gas) on every registration. Trying ECDSA first skips it for ordinary keys: a
    /// contract has no private key, so a recovery that yields its address does not happen by accident.
    /// Contract wallets (ERC-1271) are asked only when ECDSA does not match.
    function _isValidSignature(address signer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        if (signature.length == 65) {
            (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(
                digest,
                uint8(signature[64]),
                bytes32(signature[0:32]),
                bytes32(signature[32:64])
            );
            if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        }
        return SignatureChecker.isValidERC1271SignatureNow(signer, digest, signature);
    }

    /// @dev `hashStruct` in assembly over scratch memory: `abi.encode` would allocate on every entry of a
    /// batch, and memory expansion grows quadratically. Equivalent to
    /// `_hashTypedDataV4(keccak256(abi.encode(REGISTRATION_TYPEHASH, reg.docHash, reg.signer, ...)))`.
    function _registrationDigest(Registration calldata reg) private view returns (bytes32 digest) {
        address signer = reg.signer; // reverts on a dirty address word, which calldatacopy would not see
        bytes32 separator = _domainSeparatorV4();
        bytes32 typehash = REGISTRATION_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            calldatacopy(add(ptr, 0x20), reg, 0xa0) // the five static words of Registration
            mstore(add(ptr, 0x40), signer)
            let structHash := keccak256(ptr, 0xc0)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), separator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }
}
