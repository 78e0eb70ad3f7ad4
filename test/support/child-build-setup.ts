/** Vitest setup file of the integration projects: child processes run the run's build (spawn.ts). */
import { inject } from 'vitest';
import { useChildBuild } from './spawn.js';

useChildBuild(inject('childBuildDir'));
