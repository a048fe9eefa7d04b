import { edgeDataSuite } from './edge-data.suite.ts';

edgeDataSuite('embedded');
