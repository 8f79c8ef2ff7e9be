import type { LintRule } from './types.ts';

/** Every destination imports one file: a backing file or an external data file would be left behind. */
const standaloneRule: LintRule = (target, f) => {
  const who = target.name === 'openstack' ? 'Glance refuses images with' : `${target.name} imports one standalone file, without`;
  if (f.backingFile)
    return {
      rule: 'standalone',
      status: 'fail',
      reason: `${who} a backing file; this one has "${f.backingFile}" (convert it without -B to flatten it)`,
    };
  if (f.dataFile)
    return {
      rule: 'standalone',
      status: 'fail',
      reason: `${who} an external data file; this one has "${f.dataFile}" (convert it to flatten it)`,
    };
  return { rule: 'standalone', status: 'pass', reason: 'no backing file, no data file' };
};

/** XCP-ng's qcow2 import (and its storage driver) read clusters in file order: each after the one before it in guest order. */
const clusterOrderRule: LintRule = (target, f) => {
  if (target.name !== 'xcp-ng' || f.format !== 'qcow2' || f.clustersInOrder === undefined) return undefined;
  return f.clustersInOrder
    ? { rule: 'cluster-order', status: 'pass', reason: 'the qcow2 clusters lie in guest order' }
    : {
        rule: 'cluster-order',
        status: 'fail',
        reason:
          'XCP-ng imports qcow2 only with its clusters in guest order; this one has them out of order (diskferry convert -O qcow2 rewrites it in order)',
      };
};

export const STANDALONE_RULES: readonly LintRule[] = [standaloneRule, clusterOrderRule];
