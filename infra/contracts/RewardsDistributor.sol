// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @notice One Merkle root per epoch over (address account, uint256 cumulativeAmount) leaves in OpenZeppelin's
/// StandardMerkleTree encoding. A contributor claims, against the latest root, the difference between their
/// cumulative amount and what they already claimed.
///
/// Funding: the treasury approves this contract once; publishing a root pulls from the treasury exactly what the
/// new root owes beyond everything owed before (totalOwed - totalFunded), so the contract always holds what is
/// still claimable and never more.
contract RewardsDistributor is Ownable {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    address public immutable treasury;

    bytes32 public currentRoot;
    uint64 public currentEpoch;
    /// @notice The lowest epoch number the next root may carry (epochs strictly increase; gaps are allowed).
    uint64 public nextEpoch;
    /// @notice Sum of every account's cumulative amount under the current root: what the treasury has funded.
    uint256 public totalFunded;

    mapping(uint64 epoch => bytes32) public rootOf;
    mapping(uint64 epoch => bytes32) public contentHashOf;
    mapping(address account => uint256) public claimed;

    event RootPublished(uint64 indexed epoch, bytes32 root, bytes32 contentHash, uint256 totalOwed, uint256 funded);
    event Claimed(address indexed account, uint64 indexed epoch, uint256 amount, uint256 cumulativeAmount);

    error EmptyRoot();
    error EpochAlreadyPublished(uint64 epoch);
    error StaleEpoch(uint64 epoch, uint64 nextEpoch);
    error TotalOwedDecreased(uint256 totalOwed, uint256 totalFunded);
    error NoRootPublished();
    error InvalidProof();
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);

    constructor(IERC20 token_, address treasury_, address operator) Ownable(operator) {
        token = token_;
        treasury = treasury_;
    }

    /// @notice Publishes the root of `epoch`; `totalOwed` is the sum of every leaf's cumulative amount in it.
    function publishRoot(uint64 epoch, bytes32 root, bytes32 contentHash, uint256 totalOwed) external onlyOwner {
        if (root == bytes32(0)) revert EmptyRoot();
        if (epoch < nextEpoch) {
            if (rootOf[epoch] != bytes32(0)) revert EpochAlreadyPublished(epoch);
            revert StaleEpoch(epoch, nextEpoch);
        }
        if (totalOwed < totalFunded) revert TotalOwedDecreased(totalOwed, totalFunded);

        uint256 funded = totalOwed - totalFunded;
        rootOf[epoch] = root;
        contentHashOf[epoch] = contentHash;
        currentRoot = root;
        currentEpoch = epoch;
        nextEpoch = epoch + 1;
        totalFunded = totalOwed;
        emit RootPublished(epoch, root, contentHash, totalOwed, funded);

        if (funded > 0) token.safeTransferFrom(treasury, address(this), funded);
    }

    /// @notice Pays `account` what its leaf in the current root owes beyond what it already claimed. Anyone may
    /// submit the claim; the tokens always go to `account`.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        if (currentRoot == bytes32(0)) revert NoRootPublished();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, currentRoot, leaf)) revert InvalidProof();

        uint256 alreadyClaimed = claimed[account];
        if (cumulativeAmount <= alreadyClaimed) revert NothingToClaim(account, cumulativeAmount, alreadyClaimed);

        uint256 amount = cumulativeAmount - alreadyClaimed;
        claimed[account] = cumulativeAmount;
        emit Claimed(account, currentEpoch, amount, cumulativeAmount);

        token.safeTransfer(account, amount);
    }
}
