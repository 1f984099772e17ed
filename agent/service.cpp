// SPDX-License-Identifier: Apache-2.0
// (placeholder until this part is written)
