// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IDocumentRegistry} from "../IDocumentRegistry.sol";

/// @title LookAlikeRegistry
/// @notice Test-only forgery: the registry's whole public surface, answering "yes" to everything. `register`
/// records and emits `Registered` for any signer without checking the signature, so a receipt naming it has a
/// real transaction, block, timestamp, event and record. Only a check of the runtime code tells it apart, which
/// is what the verification tests prove. The fallback also answers ERC-1271's `isValidSignature` with the magic
/// value, as a forger's "wallet" would.
contract LookAlikeRegistry is IDocumentRegistry, EIP712 {
    mapping(bytes32 docHash => mapping(address signer => Record)) private _records;

    constructor() EIP712("docchain", "1") {}

    function register(Registration calldata reg, bytes calldata) external returns (bool) {
        _records[reg.docHash][reg.signer] = Record(uint48(block.timestamp), uint48(block.number), 0);
        emit Registered(reg.docHash, reg.signer, reg.metadataHash, reg.supersedes);
        return true;
    }

    function registerBatch(CompactSignedRegistration[] calldata) external pure returns (uint256) {
        return 0;
    }

    function revoke(bytes32) external {}

    function revokeBySig(bytes32, address, uint256, uint256, bytes calldata) external {}

    function anchorRoot(bytes32 root, uint256 leafCount) external {
        emit RootAnchored(root, leafCount, msg.sender);
    }

    function revokeMerkleBySig(bytes32, MerkleLeaf calldata, bytes32[] calldata, uint256, uint256, bytes calldata) external {}

    function anchorOf(bytes32) external view returns (Anchor memory) {
        return Anchor(uint48(block.timestamp), uint48(block.number));
    }

    function verifyMerkleRegistration(
        bytes32,
        Registration calldata,
        bytes calldata,
        bytes32[] calldata
    ) external view returns (Record memory) {
        return Record(uint48(block.timestamp), uint48(block.number), 0);
    }

    function leafHash(MerkleLeaf calldata leaf) external pure returns (bytes32) {
        return keccak256(abi.encode(leaf));
    }

    function recordOf(bytes32 docHash, address signer) external view returns (Record memory) {
        return _records[docHash][signer];
    }

    function isValidRegistration(Registration calldata, bytes calldata) external pure returns (bool) {
        return true;
    }

    function registrationDigest(Registration calldata reg) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(reg)));
    }

    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    fallback(bytes calldata) external returns (bytes memory) {
        return abi.encode(bytes4(0x1626ba7e));
    }
}
