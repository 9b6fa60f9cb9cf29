/**
 * Runs in a worker thread (password-strength.ts): zxcvbn's estimate costs up to a few hundred
 * milliseconds of CPU for a long repetitive password, which must never be the event loop's.
 */
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';

const zxcvbn = new ZxcvbnFactory({ dictionary: { ...common.dictionary }, graphs: common.adjacencyGraphs });

export interface StrengthTask {
  password: string;
  userInputs: string[];
}

export default function score(task: StrengthTask): number {
  return zxcvbn.check(task.password, task.userInputs).score;
}
