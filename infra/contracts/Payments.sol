// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice A buyer pays reward tokens to the marketplace treasury, naming their buyer id; the marketplace follows
/// PaymentReceived and credits the buyer once per (transaction hash, log index). The payer approves this contract first.
contract Payments {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    address public immutable treasury;

    event PaymentReceived(bytes32 indexed buyerId, address indexed payer, uint256 amount);

    error ZeroAmount();
    error ZeroBuyerId();

    constructor(IERC20 token_, address treasury_) {
        token = token_;
        treasury = treasury_;
    }

    function pay(bytes32 buyerId, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        if (buyerId == bytes32(0)) revert ZeroBuyerId();
        emit PaymentReceived(buyerId, msg.sender, amount);
        token.safeTransferFrom(msg.sender, treasury, amount);
    }
}
