// Adaptive training's decision rule (src/core/train_gate.cpp, docs/format.md "Training schedule").
#include <gtest/gtest.h>

#include "core/train_gate.h"

namespace nncpp {
namespace {

ModelSettings gated(uint32_t max_skip, float margin) {
  ModelSettings m;
  m.train_max_skip = max_skip;
  m.train_margin = margin;
  return m;
}

TEST(TrainGate, OffTrainsEverySegment) {
  TrainGate gate(gated(0, 0.5f));
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(gate.should_update(i % 7 * 10.0, 10));
  EXPECT_EQ(gate.skipped_total(), 0u);
}

TEST(TrainGate, EasySegmentsSkipAtMostMaxSkipInARow) {
  TrainGate gate(gated(2, 0.1f));
  EXPECT_TRUE(gate.should_update(400.0, 100));  // first segment: no average yet
  // Loss 2 bits/symbol against an average near 4: easy, skipped twice, then the third must train.
  EXPECT_FALSE(gate.should_update(200.0, 100));
  EXPECT_FALSE(gate.should_update(200.0, 100));
  EXPECT_TRUE(gate.should_update(200.0, 100));
  EXPECT_EQ(gate.skipped_total(), 2u);
}

TEST(TrainGate, SegmentsAtOrAboveTheAverageAlwaysTrain) {
  TrainGate gate(gated(1000, 0.05f));
  EXPECT_TRUE(gate.should_update(300.0, 100));
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(gate.should_update(300.0 + i, 100)) << i;  // rising loss
  // Within the margin below the average is not easy enough.
  EXPECT_TRUE(gate.should_update(0.97 * 3.3 * 100, 100));
}

TEST(TrainGate, EmptySegmentsTrainAndDoNotMoveTheAverage) {
  TrainGate gate(gated(4, 0.1f));
  EXPECT_TRUE(gate.should_update(0.0, 0));
  EXPECT_TRUE(gate.should_update(400.0, 100));
  EXPECT_TRUE(gate.should_update(0.0, 0));
  EXPECT_FALSE(gate.should_update(100.0, 100));
}

}  // namespace
}  // namespace nncpp
